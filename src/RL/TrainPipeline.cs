using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>Settings of <c>nr train</c>: the default run and its budgets.</summary>
public sealed record TrainSettings
{
    public string Name { get; init; } = "default";
    public string RunsDirectory { get; init; } = "runs";
    /// <summary>The model: the CPU benchmark preset (MLA + MoE, 256 routed + 1 shared experts, top-8), vocab from the tokenizer.</summary>
    public DeepseekV3Config Model { get; init; } = DeepseekV3Config.Preset("bench-tiny") with { MaxPositionEmbeddings = 256 };
    public string Task { get; init; } = "arithmetic";
    /// <summary>Pre-training stops at this many steps or this wall time, whichever comes first.</summary>
    public int PretrainSteps { get; init; } = 4000;
    public double PretrainMinutes { get; init; } = 5;
    public int PretrainBatch { get; init; } = 32;
    public float PretrainLearningRate { get; init; } = 3e-3f;
    /// <summary>Share of pre-training answers written with a &lt;think&gt; trace (the rest are direct answers).</summary>
    public double ThinkFraction { get; init; } = 0.5;
    public GrpoSettings Grpo { get; init; } = new GrpoSettings
    {
        Steps = 200,
        Trainer = new GrpoConfig
        {
            NumGenerations = 8, PromptsPerStep = 8, MaxCompletionLength = 64, LossType = LossType.Dapo, EpsilonHigh = 0.28f,
            LearningRate = 5e-4f, WarmupSteps = 5, TotalSteps = 200, EvalEvery = 20, EvalProblems = 50, Temperature = 1f,
        },
        AccuracyWeight = 1f, FormatWeight = 0.5f,
    };
    public double RlMinutes { get; init; } = 8;
    /// <summary>Held-out problems for the before/after comparison (levels cycle, so this many / levels per level).</summary>
    public int EvalProblems { get; init; } = 100;
    public ulong Seed { get; init; }
}

/// <summary>
/// <c>nr train</c>: build a small DeepSeek-V3 (random init), pre-train it on synthetic problems whose answers
/// mix direct answers with &lt;think&gt; traces (<see cref="ThinkTraces"/>), then GRPO on accuracy + format
/// rewards. Writes <c>runs/NAME/</c>: <c>model/</c>, <c>metrics.jsonl</c> (pre-training and RL, with a
/// <c>phase</c> field), <c>summary.json</c> (held-out results after pre-training and after RL, by difficulty,
/// and the checks of the issue), <c>samples.md</c>, and PNG plots (<see cref="Plots"/>). Cancellation (Ctrl-C)
/// saves <c>checkpoint/</c> (weights + phase and step); running again resumes from it (optimizer moments
/// restart from zero).
/// </summary>
public static class TrainPipeline
{
    public static JsonObject Run(TrainSettings s, Action<string> progress, CancellationToken cancel = default)
    {
        var runDir = Path.Combine(s.RunsDirectory, s.Name);
        var ckptDir = Path.Combine(runDir, "checkpoint");
        Directory.CreateDirectory(runDir);
        var task = TaskRegistry.Create(s.Task);
        if (!ThinkTraces.Supports(task.Name)) throw new ArgumentException($"nr train pre-trains with think traces, which task '{task.Name}' has none of; use arithmetic, linear or word");
        var tokenizer = new CharTokenizer();
        var template = PromptTemplate.Default;
        var config = s.Model with { VocabSize = Math.Max(s.Model.VocabSize, tokenizer.VocabSize), EosTokenIds = [tokenizer.EosId], BosTokenId = tokenizer.BosId, PadTokenId = tokenizer.PadId };

        // Resume: weights and where we were.
        string phase = "pretrain";
        int done = 0;
        DeepseekV3ForCausalLM model;
        if (File.Exists(Path.Combine(ckptDir, "state.json")))
        {
            var state = JsonNode.Parse(File.ReadAllText(Path.Combine(ckptDir, "state.json")))!;
            phase = (string)state["phase"]!;
            done = (int)state["step"]!;
            model = DeepseekV3Checkpoint.Load(ckptDir);
            progress($"resuming from {ckptDir}: {phase} step {done}");
        }
        else
        {
            model = new DeepseekV3ForCausalLM(config, new Generator(s.Seed + 17));
            foreach (var f in new[] { "metrics.jsonl" }) File.Delete(Path.Combine(runDir, f));
        }
        using var _ = model;
        var policy = new DeepseekPolicy(model);
        var heldOut = task.Generate(Split.Test, s.EvalProblems, s.Seed);
        var greedy = new GenerationOptions { MaxNewTokens = s.Grpo.Trainer.MaxCompletionLength, Temperature = 0f, EosTokenIds = [tokenizer.EosId] };
        using var log = new MetricsLogger(Path.Combine(runDir, "metrics.jsonl"));

        void Checkpoint(string ph, int step)
        {
            DeepseekV3Checkpoint.Save(model, ckptDir);
            File.WriteAllText(Path.Combine(ckptDir, "state.json"), new JsonObject { ["phase"] = ph, ["step"] = step }.ToJsonString());
            progress($"\ncheckpoint saved ({ph} step {step}); run again to resume");
        }

        // ---- pre-training (SFT on think / direct mixes)
        if (phase == "pretrain")
        {
            using var sft = new SftTrainer(policy, tokenizer, template, s.PretrainLearningRate, s.PretrainSteps, warmupSteps: 50, weightDecay: 0.01f);
            var rng = new Generator(s.Seed + 99 + (ulong)done);
            var clock = Stopwatch.StartNew();
            model.Train();
            for (; done < s.PretrainSteps && clock.Elapsed.TotalMinutes < s.PretrainMinutes; done++)
            {
                if (cancel.IsCancellationRequested) { Checkpoint("pretrain", done); return new JsonObject { ["interrupted"] = true }; }
                var batch = task.Generate(Split.Train, s.PretrainBatch, s.Seed + 1000 + (ulong)done)
                    .Select(p => ThinkTraces.Example(p, rng.NextDouble() < s.ThinkFraction)).ToArray();
                float loss = sft.Step(batch);
                log.Log([new("phase", 0), new("step", done + 1), new("loss", loss), new("elapsed_s", clock.Elapsed.TotalSeconds)]);
                if (done % 10 == 0) progress($"\rpre-train {Bar(done, s.PretrainSteps)} step {done + 1}  loss {loss:F3}  {clock.Elapsed:mm\\:ss}   ");
            }
            progress("\n");
            phase = "rl";
            done = 0;
        }

        var afterPretrain = Evaluation.Run(policy, tokenizer, template, task, heldOut, greedy);
        progress($"after pre-training: held-out accuracy {afterPretrain.Accuracy:P1}, format {afterPretrain.FormatRate:P0}, think {afterPretrain.ThinkRate:P0}\n");

        // ---- GRPO
        var grpo = s.Grpo with { Task = task.Name, Trainer = s.Grpo.Trainer with { Seed = s.Seed + (ulong)done } };
        var rlClock = Stopwatch.StartNew();
        var rows = new List<Dictionary<string, double>>();
        using (var reference = grpo.Trainer.Beta != 0 ? new DeepseekV3ForCausalLM(config, new Generator(0)) : null)
        {
            if (reference != null) CopyWeights(model, reference);
            using var trainer = new GrpoTrainer(policy, reference == null ? null : new DeepseekPolicy(reference), tokenizer, task,
                grpo.Rewards(task, template.ThinkPrefilled), template, grpo.Trainer);
            for (; done < grpo.Steps && rlClock.Elapsed.TotalMinutes < s.RlMinutes; done++)
            {
                if (cancel.IsCancellationRequested) { Checkpoint("rl", done); return new JsonObject { ["interrupted"] = true }; }
                var m = trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value);
                m["step"] = done + 1;
                rows.Add(m);
                log.Log([new("phase", 1), .. m]);
                progress($"\rGRPO {Bar(done, grpo.Steps)} step {done + 1}  reward {m["reward"]:F2}  acc {m["rewards/accuracy/mean"]:F2}  fmt {m.GetValueOrDefault("rewards/format/mean", double.NaN):F2}  " +
                         $"len {m["completions/mean_length"]:F0}" + (m.TryGetValue("eval/accuracy", out var ea) ? $"  held-out {ea:P0}" : "") + "   ");
            }
        }
        progress("\n");
        var afterRl = Evaluation.Run(policy, tokenizer, template, task, heldOut, greedy);
        progress($"after GRPO: held-out accuracy {afterRl.Accuracy:P1}, format {afterRl.FormatRate:P0}, think {afterRl.ThinkRate:P0}\n");

        // ---- outputs
        var bundleDir = Path.Combine(runDir, "model");
        DeepseekV3Checkpoint.Save(model, bundleDir);
        tokenizer.Save(bundleDir);
        template.Save(bundleDir);
        if (Directory.Exists(ckptDir)) Directory.Delete(ckptDir, true);
        int hardest = task.MaxDifficulty, easiest = 1;
        double Acc(EvalReport r, int level) => r.ByDifficulty.TryGetValue(level, out var v) ? v.Accuracy : double.NaN;
        double ThinkLen(EvalReport r, int level) => r.ByDifficulty.TryGetValue(level, out var v) ? v.MeanLength : double.NaN;
        var checks = new JsonObject
        {
            ["hardest_level"] = hardest,
            ["hardest_accuracy_gain_points"] = 100 * (Acc(afterRl, hardest) - Acc(afterPretrain, hardest)),
            ["hardest_accuracy_gain_ok"] = 100 * (Acc(afterRl, hardest) - Acc(afterPretrain, hardest)) >= 10,
            ["format_reward_after_rl"] = afterRl.FormatRate,
            ["format_ok"] = afterRl.FormatRate >= 0.95,
            ["completion_length_easiest_vs_hardest"] = new JsonArray(ThinkLen(afterRl, easiest), ThinkLen(afterRl, hardest)),
            ["thinking_grows_with_difficulty"] = ThinkLen(afterRl, hardest) > ThinkLen(afterRl, easiest),
        };
        var summary = new JsonObject
        {
            ["task"] = task.Name, ["model"] = JsonSerializer.SerializeToNode(new { config.HiddenSize, config.NumHiddenLayers, config.NRoutedExperts, config.NSharedExperts, config.NumExpertsPerTok, config.VocabSize }),
            ["pretrain_steps"] = s.PretrainSteps, ["rl_steps"] = rows.Count, ["rl_minutes"] = rlClock.Elapsed.TotalMinutes,
            ["after_pretraining"] = afterPretrain.ToJson(), ["after_rl"] = afterRl.ToJson(), ["checks"] = checks,
        };
        File.WriteAllText(Path.Combine(runDir, "summary.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var samples = new StringBuilder("# The same held-out problems after pre-training and after GRPO (greedy)\n");
        for (int i = 0; i < Math.Min(heldOut.Count, 15); i++)
            samples.Append($"\n## {heldOut[i].Prompt} (level {heldOut[i].Difficulty}, answer {heldOut[i].Answer})\n\nafter pre-training:\n\n```\n{afterPretrain.Completions[i]}\n```\n\nafter GRPO:\n\n```\n{afterRl.Completions[i]}\n```\n");
        File.WriteAllText(Path.Combine(runDir, "samples.md"), samples.ToString());
        Plots.WriteRunPlots(runDir, rows, afterPretrain, afterRl);
        return summary;
    }

    private static void CopyWeights(DeepseekV3ForCausalLM from, DeepseekV3ForCausalLM to)
    {
        var src = from.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        using var noGrad = Tensor.NoGrad();
        foreach (var (name, p) in to.NamedParameters()) p.CopyFrom_(src[name]);
        // Buffers too (the router's e_score_correction_bias moves during training).
        var bufs = from.NamedBuffers().ToDictionary(b => b.Name, b => b.Buffer);
        foreach (var (name, b) in to.NamedBuffers()) b.CopyFrom_(bufs[name]);
    }

    private static string Bar(int done, int total)
    {
        int width = 24, filled = total == 0 ? width : Math.Min(width, done * width / total);
        return "[" + new string('#', filled) + new string('.', width - filled) + "]";
    }
}
