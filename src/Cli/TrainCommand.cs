using System.CommandLine;
using NativeReasoner.Distributed;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr train`: the default reasoning run (see <see cref="TrainPipeline"/>); checkpoints are periodic and crash-safe,
/// Ctrl-C saves one too, and running again resumes from the newest valid one. Under <c>mpirun -np N</c> it trains
/// data-parallel over the N ranks (only rank 0 prints and writes).
/// </summary>
public static class TrainCommand
{
    public static Command Build()
    {
        var d = new TrainSettings();
        var name = new Option<string>("--name") { Description = "Run name: output goes to RUNS/NAME.", DefaultValueFactory = _ => d.Name };
        var runs = new Option<string>("--runs-dir") { Description = "Where runs are written.", DefaultValueFactory = _ => d.RunsDirectory };
        var pretrainSteps = new Option<int>("--pretrain-steps")
        {
            Description = "Pre-training steps (they set the LR schedule; GRPO's are --steps).",
            DefaultValueFactory = _ => d.PretrainSteps,
        };
        var pretrainMinutes = new Option<double>("--pretrain-max-minutes")
        {
            Description = "Outer wall-time limit of pre-training (a hit is reported as budget_hit).",
            DefaultValueFactory = _ => d.PretrainMaxMinutes,
        };
        var pretrainBatch = new Option<int>("--pretrain-batch") { DefaultValueFactory = _ => d.PretrainBatch };
        var pretrainLr = new Option<float>("--pretrain-learning-rate") { DefaultValueFactory = _ => d.PretrainLearningRate };
        var thinkFraction = new Option<double>("--think-fraction") { Description = "Share of pre-training answers with a <think> trace.", DefaultValueFactory = _ => d.ThinkFraction };
        var r1Zero = new Option<bool>("--r1-zero")
        {
            Description = "R1-Zero variant: pre-training holds no <think> answers; worked steps appear only as " +
                          "plain documents (--think-fraction of the batch).",
        };
        var unseenProblems = new Option<int>("--unseen-problems")
        {
            Description = "Held-out problems of the ladder's unseen level 6 (two-digit × two-digit), evaluated " +
                          "before and after RL; 0 skips it.",
            DefaultValueFactory = _ => d.UnseenProblems,
        };
        var rlUnseenWeight = new Option<double>("--rl-unseen-weight")
        {
            Description = "Weight of level 6 (two-digit × two-digit, its training split) among GRPO's prompts, " +
                          "beside the weights of levels 1–5; pre-training never shows it (0: GRPO never draws it).",
            DefaultValueFactory = _ => d.RlUnseenWeight,
        };
        var evalSamples = new Option<int>("--eval-samples")
        {
            Description = "Samples per held-out problem of the sampled evaluation before and after GRPO " +
                          "(T 0.6, top-p 0.95: pass@1 averaged over them, pass@k, maj@k per level); 0 skips it.",
            DefaultValueFactory = _ => d.EvalSamples,
        };
        var initFrom = new Option<string?>("--init-from")
        {
            Description = "Start GRPO from this saved model (a run's model/ folder) instead of pre-training.",
        };
        var rlMinutes = new Option<double>("--rl-max-minutes")
        {
            Description = "Outer wall-time limit of GRPO (a hit is reported as budget_hit).",
            DefaultValueFactory = _ => d.RlMaxMinutes,
        };
        var device = DeviceOption.Create();
        var bf16 = Bf16Option.Create(training: true);
        var preset = new Option<string>("--model-preset")
        {
            Description = "Model: " + string.Join(", ", ModelPresets.Names) + " (DeepSeek-V3 presets, dense qwen2/llama/qwen3 ones and qwen3-moe-tiny; vocab from the tokenizer; a resumed run keeps its checkpoint's).",
            DefaultValueFactory = _ => "bench-tiny",
        };
        var evalProblems = new Option<int>("--heldout-problems") { Description = "Held-out problems compared before and after RL.", DefaultValueFactory = _ => d.EvalProblems };
        var checkpointEvery = new Option<double>("--checkpoint-every-minutes")
        {
            Description = "Wall time between crash-safe checkpoints (each phase end is one too; 0 = every step).",
            DefaultValueFactory = _ => d.CheckpointEveryMinutes,
        };
        var overwrite = new Option<bool>("--overwrite")
        {
            Description = "Replace RUNS/NAME when it holds another configuration or a finished run " +
                          "(instead of refusing or showing its summary).",
        };
        var settingOptions = GrpoSettings.Names
            .Select(n => (n.Name, Option: new Option<string?>("--" + n.Name.Replace('_', '-')) { Description = "GRPO: " + n.Help }))
            .ToArray();
        var command = new Command("train", "Pre-train a small model (DeepSeek-V3 by default) on synthetic problems with think traces, then GRPO it; writes runs/NAME/.")
            { name, runs, pretrainSteps, pretrainMinutes, pretrainBatch, pretrainLr, thinkFraction, rlMinutes, evalProblems, preset, device, checkpointEvery,
              overwrite, r1Zero, unseenProblems, rlUnseenWeight, evalSamples, initFrom, bf16 };
        foreach (var (_, o) in settingOptions) command.Options.Add(o);
        command.SetAction(parse =>
        {
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                // First Ctrl-C: finish the current step, save a checkpoint, exit. A second one kills as usual.
                if (cts.IsCancellationRequested) return;
                e.Cancel = true;
                cts.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            IProcessGroup? group = null;
            try
            {
                group = ProcessGroups.FromEnvironment();
                using var onDevice = DeviceOption.Use(parse.GetValue(device)!);
                using var fastPath = Bf16Option.Use(parse.GetValue(bf16), onDevice.Device, "train", training: true);
                var grpo = d.Grpo;
                foreach (var (key, o) in settingOptions)
                    if (parse.GetValue(o) is { } v) grpo = grpo.With(key, v);
                var s = d with
                {
                    Name = parse.GetValue(name)!,
                    RunsDirectory = parse.GetValue(runs)!,
                    Task = grpo.Task,
                    PretrainSteps = parse.GetValue(pretrainSteps),
                    PretrainMaxMinutes = parse.GetValue(pretrainMinutes),
                    PretrainBatch = parse.GetValue(pretrainBatch),
                    PretrainLearningRate = parse.GetValue(pretrainLr),
                    ThinkFraction = parse.GetValue(thinkFraction),
                    R1Zero = parse.GetValue(r1Zero),
                    UnseenProblems = parse.GetValue(unseenProblems),
                    RlUnseenWeight = parse.GetValue(rlUnseenWeight),
                    EvalSamples = parse.GetValue(evalSamples),
                    InitFrom = parse.GetValue(initFrom),
                    RlMaxMinutes = parse.GetValue(rlMinutes),
                    EvalProblems = parse.GetValue(evalProblems),
                    Grpo = grpo,
                    Seed = grpo.Trainer.Seed,
                    CheckpointEveryMinutes = parse.GetValue(checkpointEvery),
                    Overwrite = parse.GetValue(overwrite),
                    Model = ModelPresets.Get(parse.GetValue(preset)!).WithMaxPositionEmbeddings(d.Model.MaxPositionEmbeddings),
                };
                var summary = TrainPipeline.Run(s, Console.Write, cts.Token, group: group);
                if (group.Rank == 0) Console.WriteLine(summary.ToJsonString(TrainPipeline.SummaryJson));
                return cts.IsCancellationRequested ? 130 : 0;
            }
            catch (CollectiveTimeoutException e)
            {
                // A rank died or hangs: end every rank now (the last checkpoint on disk stays whole).
                group!.Abort($"nr train: {e.Message}; run the same command again to resume from the last checkpoint");
                return 1;
            }
            catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException or ArgumentException
                                      or IOException or NotSupportedException or InvalidOperationException
                                      or ProcessGroupException)
            {
                Console.Error.WriteLine(group is { Size: > 1 }
                    ? $"nr train (rank {group.Rank} of {group.Size}): {e.Message}" : $"nr train: {e.Message}");
                return 1;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
                group?.Dispose();
            }
        });
        return command;
    }
}
