// Source: DeepSeek-R1 (arXiv:2501.12948) §2.3: cold start, reasoning RL, rejection sampling + SFT, RL.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>
/// The steps the pipelines (<see cref="R1ZeroRun"/>, <see cref="R1Run"/>, <see cref="DistillRun"/>) are built
/// from, so each is written once: held-out evaluation, a GRPO stage, an SFT stage, rejection sampling, and
/// the stage bookkeeping (a directory per stage with its model and metrics, a <c>stage.json</c> written last
/// so a rerun skips finished stages).
/// </summary>
public static class PipelineStages
{
    public const string StageFile = "stage.json";
    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Greedy options for held-out evaluation: completions up to the GRPO length.</summary>
    public static GenerationOptions Greedy(ITokenizer tokenizer, GrpoSettings s) =>
        new() { MaxNewTokens = s.Trainer.MaxCompletionLength, Temperature = 0f, EosTokenIds = [tokenizer.EosId] };

    /// <summary>The trainer's sampling settings (temperature, top-p, top-k) for rejection sampling and teacher traces.</summary>
    public static GenerationOptions Sampling(ITokenizer tokenizer, GrpoSettings s) => new()
    {
        MaxNewTokens = s.Trainer.MaxCompletionLength, Temperature = s.Trainer.Temperature, TopP = s.Trainer.TopP, TopK = s.Trainer.TopK,
        EosTokenIds = [tokenizer.EosId],
    };

    public static EvalReport Evaluate(ModelBundle b, VerifiableTask task, IReadOnlyList<Problem> heldOut, GrpoSettings s) =>
        Evaluation.Run(b.Policy, b.Tokenizer, b.Template, task, heldOut, Greedy(b.Tokenizer, s));

    /// <summary>
    /// GRPO on <paramref name="b"/> in place for <paramref name="steps"/> generation batches; metrics to
    /// <paramref name="metricsPath"/>. <paramref name="referenceDir"/> is the frozen reference (loaded only when β ≠ 0).
    /// </summary>
    public static JsonObject Grpo(ModelBundle b, string referenceDir, VerifiableTask task, GrpoSettings settings, int steps,
        string metricsPath, Action<string>? progress)
    {
        using var reference = settings.Trainer.Beta != 0 ? ModelBundle.Load(referenceDir) : null;
        if (File.Exists(metricsPath)) File.Delete(metricsPath);
        var rewards = settings.Rewards(task, b.Template.ThinkPrefilled);
        var config = settings.Trainer with { TotalSteps = steps };
        double lastReward = double.NaN;
        using (var trainer = new GrpoTrainer(b.Policy, reference?.Policy, b.Tokenizer, task, rewards, b.Template, config, metricsPath))
            for (int step = 0; step < steps; step++)
            {
                var m = trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value);
                lastReward = m["reward"];
                progress?.Invoke($"step {step + 1}/{steps}  reward {m["reward"]:F3}  len {m["completions/mean_length"]:F1}  " +
                                 $"zero-std {m["frac_reward_zero_std"]:F2}  {m["step_time"]:F1}s" +
                                 (m.TryGetValue("eval/accuracy", out var acc) ? $"  held-out {acc:P1}" : ""));
            }
        return new JsonObject { ["steps"] = steps, ["last_reward"] = lastReward };
    }

    /// <summary>
    /// SFT on <paramref name="data"/> (completion tokens only) for the configured epochs; loss per step to
    /// <paramref name="metricsPath"/>. An empty set trains nothing and says so.
    /// </summary>
    public static JsonObject Sft(ModelBundle b, IReadOnlyList<SftExample> data, PipelineSettings s, string metricsPath, ulong seed, Action<string>? progress)
    {
        if (File.Exists(metricsPath)) File.Delete(metricsPath);
        if (data.Count == 0)
        {
            progress?.Invoke("SFT skipped: no examples");
            return new JsonObject { ["examples"] = 0, ["steps"] = 0, ["skipped"] = true };
        }
        int perEpoch = (data.Count + s.SftBatchSize - 1) / s.SftBatchSize;
        var t = s.Grpo.Trainer;
        using var trainer = new SftTrainer(b.Policy, b.Tokenizer, b.Template, s.SftLearningRate, perEpoch * s.SftEpochs,
            weightDecay: t.WeightDecay, maxGradNorm: t.MaxGradNorm);
        using var log = new MetricsLogger(metricsPath);
        var rng = new Generator(seed);
        int step = 0;
        float last = float.NaN;
        b.Policy.Model.Train();
        try
        {
            for (int epoch = 0; epoch < s.SftEpochs; epoch++)
            {
                last = trainer.Epoch(data, s.SftBatchSize, rng, loss =>
                    log.Log([new("step", ++step), new("epoch", epoch + 1), new("loss", loss), new("learning_rate", trainer.Optimizer.LearningRate)]));
                progress?.Invoke($"SFT epoch {epoch + 1}/{s.SftEpochs}  loss {last:F3}");
            }
        }
        finally { b.Policy.Model.Eval(); }
        return new JsonObject { ["examples"] = data.Count, ["steps"] = step, ["last_epoch_loss"] = last };
    }

    /// <summary>Rejection sampling of <paramref name="policy"/> on fresh training problems; the kept set as JSONL at <paramref name="outPath"/>.</summary>
    public static (IReadOnlyList<SftExample> Kept, JsonObject Stats) Rejection(IPolicy policy, ITokenizer tokenizer, PromptTemplate template,
        VerifiableTask task, PipelineSettings s, ulong seed, string outPath, Action<string>? progress)
    {
        var problems = task.Generate(Split.Train, s.RejectionProblems, seed);
        var r = RejectionSampling.Run(policy, tokenizer, template, task, problems, s.RejectionSamples, Sampling(tokenizer, s.Grpo),
            new Generator(seed + 0xAB), outPath, s.KeepPerProblem);
        progress?.Invoke($"rejection sampling: kept {r.Kept.Count} of {r.Sampled} samples ({r.ProblemsSolved}/{problems.Count} problems solved)");
        return (r.Kept, new JsonObject
        {
            ["problems"] = problems.Count, ["sampled"] = r.Sampled, ["kept"] = r.Kept.Count, ["problems_solved"] = r.ProblemsSolved,
            ["data"] = Path.GetFileName(outPath),
        });
    }

    /// <summary>
    /// Runs one stage unless <c>DIR/stage.json</c> says it finished (then its record is returned and the
    /// caller reloads its model). The stage saves the model to <c>DIR/model</c>; its record gets the name,
    /// the held-out evaluation after it and the wall time, and is written last.
    /// </summary>
    public static JsonObject Stage(string runDir, string name, ref ModelBundle b, VerifiableTask task, IReadOnlyList<Problem> heldOut,
        GrpoSettings s, Func<string, JsonObject> run, Action<string>? progress)
    {
        var dir = Path.Combine(runDir, name);
        var marker = Path.Combine(dir, StageFile);
        var modelDir = Path.Combine(dir, "model");
        if (File.Exists(marker))
        {
            progress?.Invoke($"{name}: already done, loading {modelDir}");
            var done = JsonNode.Parse(File.ReadAllText(marker)) as JsonObject ?? throw new InvalidDataException($"{marker}: expected a JSON object");
            var loaded = ModelBundle.Load(modelDir);
            b.Dispose();
            b = loaded;
            return done;
        }
        Directory.CreateDirectory(dir);
        progress?.Invoke($"== {name}");
        var clock = Stopwatch.StartNew();
        var record = run(dir);
        b.Save(modelDir);
        var after = Evaluate(b, task, heldOut, s);
        progress?.Invoke($"{name}: held-out accuracy {after.Accuracy:P1}, format {after.FormatRate:P0}");
        record["stage"] = name;
        record["model"] = Path.Combine(name, "model");
        record["seconds"] = clock.Elapsed.TotalSeconds;
        record["held_out_after"] = after.ToJson();
        File.WriteAllText(marker, record.ToJsonString(Indented));
        return record;
    }

    public static void WriteSummary(string runDir, JsonObject summary) =>
        File.WriteAllText(Path.Combine(runDir, "summary.json"), summary.ToJsonString(Indented));
}
