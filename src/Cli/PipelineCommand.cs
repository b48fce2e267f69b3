using System.CommandLine;
using NativeReasoner.Distributed;
using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.RL;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr pipeline r1-zero | r1 | distill` (see <see cref="R1ZeroRun"/>, <see cref="R1Run"/>, <see cref="DistillRun"/>).
/// Settings come from defaults, then a JSON config (--config), then one command-line option per setting. Under
/// <c>mpirun -np N</c> the stages run distributed over the N ranks and rank 0 alone writes the run directory.
/// </summary>
public static class PipelineCommand
{
    public static Command Build()
    {
        var r1Zero = new Command("r1-zero", "GRPO on rule-based rewards straight from a model (R1-Zero).");
        var zeroModel = ModelOption("--model", "Model directory (checkpoint + tokenizer.json [+ prompt_template.json]).", r1Zero);
        var zeroRun = RunDirOption("metrics.jsonl, model/, summary.json, samples.md", r1Zero);
        var zeroSettings = AddSettings(r1Zero, GrpoSettings.Names, new GrpoSettings(), (s, k, v) => s.With(k, v));
        var zeroDevice = DeviceOption.Create();
        r1Zero.Options.Add(zeroDevice);
        var zeroBf16 = Bf16Option.Create(training: true);
        r1Zero.Options.Add(zeroBf16);
        var zeroSafety = AddCrashSafety(r1Zero);
        r1Zero.SetAction(parse => Guard("r1-zero", group =>
        {
            using var onDevice = DeviceOption.Use(parse.GetValue(zeroDevice)!);
            using var fastPath = Bf16Option.Use(parse.GetValue(zeroBf16), onDevice.Device, "pipeline r1-zero",
                training: true);
            R1ZeroRun.Run(parse.GetValue(zeroModel)!, parse.GetValue(zeroRun)!, zeroSettings(parse), Console.WriteLine,
                zeroSafety(parse), group);
        }));

        var r1 = new Command("r1", "Cold-start SFT on worked solutions → GRPO → rejection sampling + SFT → GRPO (DeepSeek-R1).");
        var r1Model = ModelOption("--model", "Base model directory (checkpoint + tokenizer.json [+ prompt_template.json]).", r1);
        var r1Run = RunDirOption("one directory per stage (model/, metrics.jsonl, data, checkpoints/), model/, " +
                                 "summary.json; a rerun skips finished stages and resumes the one under way", r1);
        var r1Settings = AddSettings(r1, PipelineSettings.Names, new PipelineSettings(), (s, k, v) => s.With(k, v));
        var r1Device = DeviceOption.Create();
        r1.Options.Add(r1Device);
        var r1Bf16 = Bf16Option.Create(training: true);
        r1.Options.Add(r1Bf16);
        var r1Safety = AddCrashSafety(r1);
        r1.SetAction(parse => Guard("r1", group =>
        {
            using var onDevice = DeviceOption.Use(parse.GetValue(r1Device)!);
            using var fastPath = Bf16Option.Use(parse.GetValue(r1Bf16), onDevice.Device, "pipeline r1",
                training: true);
            R1Run.Run(parse.GetValue(r1Model)!, parse.GetValue(r1Run)!, r1Settings(parse), Console.WriteLine,
                r1Safety(parse), group);
        }));

        var distill = new Command("distill", "A teacher's verified-correct traces train a smaller student (any family: a preset or a config.json) by SFT.");
        var teacher = ModelOption("--teacher", "Teacher model directory (checkpoint + tokenizer.json [+ prompt_template.json]).", distill);
        var student = new Option<string>("--student-config")
        {
            Description = $"Student architecture: a preset ({string.Join(", ", ModelPresets.Names)}) or a config.json (file or directory).",
            Required = true,
        };
        distill.Options.Add(student);
        var distillRun = RunDirOption("teacher_traces.jsonl, metrics.jsonl, student/, summary.json", distill);
        var distillSettings = AddSettings(distill, PipelineSettings.Names, new PipelineSettings(), (s, k, v) => s.With(k, v));
        var distillDevice = DeviceOption.Create();
        distill.Options.Add(distillDevice);
        var distillBf16 = Bf16Option.Create(training: true);
        distill.Options.Add(distillBf16);
        var distillSafety = AddCrashSafety(distill);
        distill.SetAction(parse => Guard("distill", group =>
        {
            using var onDevice = DeviceOption.Use(parse.GetValue(distillDevice)!);
            using var fastPath = Bf16Option.Use(parse.GetValue(distillBf16), onDevice.Device, "pipeline distill",
                training: true);
            DistillRun.Run(parse.GetValue(teacher)!, parse.GetValue(student)!, parse.GetValue(distillRun)!,
                distillSettings(parse), Console.WriteLine, distillSafety(parse), group);
        }));

        return new Command("pipeline", "Reasoning-RL pipelines.") { r1Zero, r1, distill };
    }

    private static Option<string> ModelOption(string name, string help, Command c)
    {
        var o = new Option<string>(name) { Description = help, Required = true };
        c.Options.Add(o);
        return o;
    }

    private static Option<string> RunDirOption(string contents, Command c) => ModelOption("--run-dir", $"Output directory ({contents}).", c);

    /// <summary>Adds --checkpoint-every-minutes and --overwrite; returns how to read them from a parse.</summary>
    private static Func<ParseResult, CrashSafety> AddCrashSafety(Command c)
    {
        var d = new CrashSafety();
        var every = new Option<double>("--checkpoint-every-minutes")
        {
            Description = "Wall time between crash-safe checkpoints of each training loop (its end is one too; " +
                          "0 = every step). A rerun resumes from the newest valid one.",
            DefaultValueFactory = _ => d.CheckpointEveryMinutes,
        };
        var overwrite = new Option<bool>("--overwrite")
        {
            Description = "Replace the run directory when it holds another configuration or a finished run " +
                          "(instead of refusing or showing its summary).",
        };
        c.Options.Add(every);
        c.Options.Add(overwrite);
        return parse => new CrashSafety
        {
            CheckpointEveryMinutes = parse.GetValue(every), Overwrite = parse.GetValue(overwrite),
        }.Validate();
    }

    /// <summary>Adds --config and one option per setting; returns how to read the settings from a parse (defaults → config → options).</summary>
    private static Func<ParseResult, T> AddSettings<T>(Command c, IEnumerable<(string Name, string Help)> names, T defaults, Func<T, string, string, T> with)
    {
        var config = new Option<string?>("--config") { Description = "JSON file of settings ({\"loss_type\": \"dapo\", ...}); command-line options override it." };
        c.Options.Add(config);
        var options = names.Select(n => (n.Name, Option: new Option<string?>("--" + n.Name.Replace('_', '-')) { Description = n.Help })).ToArray();
        foreach (var (_, o) in options) c.Options.Add(o);
        return parse =>
        {
            var s = parse.GetValue(config) is { } path ? ConfigJson.ApplyFile(defaults, path, with) : defaults;
            foreach (var (name, o) in options)
                if (parse.GetValue(o) is { } v) s = with(s, name, v);
            return s;
        };
    }

    /// <summary>
    /// Runs a pipeline in its process group (the MPI world under mpirun, else this process alone). An error on one
    /// rank of several ends every rank at once (the others would wait in their next collective), the last checkpoint
    /// whole: running the same command again resumes.
    /// </summary>
    private static int Guard(string name, Action<IProcessGroup> run)
    {
        IProcessGroup? group = null;
        try
        {
            group = ProcessGroups.FromEnvironment();
            run(group);
            return 0;
        }
        catch (CollectiveTimeoutException e)
        {
            group!.Abort($"nr pipeline {name}: {e.Message}; run the same command again to resume from the last " +
                         "checkpoint");
            return 1;
        }
        catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException or ArgumentException
                                  or IOException or NotSupportedException or InvalidOperationException
                                  or ProcessGroupException)
        {
            if (group is { Size: > 1 }) group.Abort($"nr pipeline {name}: {e.Message}");
            Console.Error.WriteLine($"nr pipeline {name}: {e.Message}");
            return 1;
        }
        finally
        {
            group?.Dispose();
        }
    }
}
