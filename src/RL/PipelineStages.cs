// Source: DeepSeek-R1 (arXiv:2501.12948) §2.3: cold start, reasoning RL, rejection sampling + SFT, RL.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.Distributed;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>
/// The steps the pipelines (<see cref="R1ZeroRun"/>, <see cref="R1Run"/>, <see cref="DistillRun"/>) are built
/// from, so each is written once: held-out evaluation, a GRPO stage, an SFT stage, rejection sampling, and
/// the stage bookkeeping (a directory per stage with its model and metrics, a <c>stage.json</c> written last
/// so a rerun skips finished stages, and crash-safe checkpoints inside each training loop,
/// <see cref="LoopCheckpoints"/>). Given a process group of several ranks (<c>mpirun -np N nr pipeline …</c>) the
/// stages are distributed — SFT data-parallel, GRPO with its rollouts spread (<see cref="GrpoTrainer"/>), rejection
/// sampling split and gathered — every rank evaluates (the same greedy results) and rank 0 alone writes.
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
    /// With <paramref name="checkpoints"/>, the loop resumes from the newest valid one (weights, AdamW, step, sampler)
    /// with the metrics cut back to its step, and saves periodically and at its end; without, it starts afresh.
    /// </summary>
    public static JsonObject Grpo(ModelBundle b, string referenceDir, VerifiableTask task, GrpoSettings settings, int steps,
        string metricsPath, Action<string>? progress, LoopCheckpoints? checkpoints = null, IProcessGroup? group = null)
    {
        bool root = IsRoot(group);
        using var reference = settings.Trainer.Beta != 0 ? ModelBundle.Load(referenceDir) : null;
        var found = checkpoints?.Find();
        int done = found?.Step ?? 0;
        // Lines after the checkpoint (or all, without one) belong to steps that are run again.
        if (root && File.Exists(metricsPath))
            MetricsLogger.KeepThrough(metricsPath, 0, done, m => progress?.Invoke(m.TrimEnd('\n')));
        var rewards = settings.Rewards(task, b.Template.ThinkPrefilled);
        var config = settings.Trainer with { TotalSteps = steps };
        double lastReward = found?.State["last_reward"]?.GetValue<double>() ?? double.NaN;
        using var trainer = new GrpoTrainer(b.Policy, reference?.Policy, b.Tokenizer, task, rewards, b.Template, config,
            metricsPath, group);
        if (found != null)
        {
            checkpoints!.Restore(found, b.Policy.Model, trainer.Optimizer);
            trainer.ResumeAt(done);
            trainer.TokensSeen = found.State["tokens_seen"]?.GetValue<long>()
                ?? throw new InvalidDataException($"{found.Path}: {RunCheckpoints.StateName} has no tokens_seen");
        }
        JsonObject State()
        {
            return new JsonObject
            {
                ["tokens_seen"] = trainer.TokensSeen,
                ["last_reward"] = double.IsFinite(lastReward) ? lastReward : null,
            };
        }
        for (int step = done; step < steps; step++)
        {
            var m = trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value);
            lastReward = m["reward"];
            progress?.Invoke($"step {step + 1}/{steps}  reward {m["reward"]:F3}  " +
                             $"len {m["completions/mean_length"]:F1}  " +
                             $"zero-std {m["frac_reward_zero_std"]:F2}  {m["step_time"]:F1}s" +
                             (m.TryGetValue("eval/accuracy", out var acc) ? $"  held-out {acc:P1}" : ""));
            checkpoints?.SaveIfDue(step + 1, b.Policy.Model, trainer.Optimizer, State, final: step + 1 == steps);
        }
        return new JsonObject { ["steps"] = steps, ["last_reward"] = double.IsFinite(lastReward) ? lastReward : null };
    }

    /// <summary>
    /// SFT on <paramref name="data"/> (completion tokens only) for the configured epochs; loss per step to
    /// <paramref name="metricsPath"/>. An empty set trains nothing and says so. With <paramref name="checkpoints"/>,
    /// the loop resumes from the newest valid one (weights, AdamW, step, the epoch's shuffle and loss sum) with
    /// the metrics cut back to its step, and saves periodically and at its end.
    /// </summary>
    public static JsonObject Sft(ModelBundle b, IReadOnlyList<SftExample> data, PipelineSettings s, string metricsPath,
        ulong seed, Action<string>? progress, LoopCheckpoints? checkpoints = null, IProcessGroup? group = null)
    {
        bool root = IsRoot(group);
        if (data.Count == 0)
        {
            if (root && File.Exists(metricsPath)) File.Delete(metricsPath);
            progress?.Invoke("SFT skipped: no examples");
            return new JsonObject { ["examples"] = 0, ["steps"] = 0, ["skipped"] = true };
        }
        int perEpoch = (data.Count + s.SftBatchSize - 1) / s.SftBatchSize;
        int total = perEpoch * s.SftEpochs;
        var t = s.Grpo.Trainer;
        using var trainer = new SftTrainer(b.Policy, b.Tokenizer, b.Template, s.SftLearningRate, total,
            weightDecay: t.WeightDecay, maxGradNorm: t.MaxGradNorm, group: group);
        var found = checkpoints?.Find();
        int done = found?.Step ?? 0;
        if (root && File.Exists(metricsPath))
            MetricsLogger.KeepThrough(metricsPath, 0, done, m => progress?.Invoke(m.TrimEnd('\n')));
        // epochStart: the generator state the current epoch's shuffle was drawn from (a resume redraws it).
        var rng = new Generator(seed);
        ulong[] epochStart = rng.GetState();
        double epochSum = 0;
        int epochSteps = 0;
        float last = float.NaN;
        if (found != null)
        {
            checkpoints!.Restore(found, b.Policy.Model, trainer.Optimizer);
            trainer.ResumeAt(done);
            var st = found.State;
            var words = st["epoch_rng"]?.AsArray().Select(w => ulong.Parse(w!.GetValue<string>())).ToArray()
                ?? throw new InvalidDataException($"{found.Path}: {RunCheckpoints.StateName} has no epoch_rng");
            rng = Generator.FromState(words);
            epochSum = st["epoch_loss_sum"]?.GetValue<double>() ?? 0;
            epochSteps = st["epoch_steps"]?.GetValue<int>() ?? 0;
            last = (float)(st["last_epoch_loss"]?.GetValue<double>() ?? double.NaN);
        }
        JsonObject State(int stepsDone)
        {
            // At an epoch boundary the next epoch has not shuffled yet: its shuffle comes from the generator as it is.
            bool boundary = stepsDone % perEpoch == 0;
            return new JsonObject
            {
                ["epoch_rng"] = new JsonArray((boundary ? rng.GetState() : epochStart)
                    .Select(w => (JsonNode)w.ToString()).ToArray()),
                ["epoch_loss_sum"] = boundary ? 0 : epochSum,
                ["epoch_steps"] = boundary ? 0 : epochSteps,
                ["last_epoch_loss"] = float.IsFinite(last) ? last : null,
            };
        }
        using var log = root ? new MetricsLogger(metricsPath) : null;
        int rank = group?.Rank ?? 0, size = group?.Size ?? 1;
        int step = done;
        b.Policy.Model.Train();
        try
        {
            for (int epoch = done / perEpoch; epoch < s.SftEpochs; epoch++)
            {
                epochStart = rng.GetState();
                var order = SftTrainer.ShuffledOrder(data.Count, rng);
                for (int batch = step - epoch * perEpoch; batch < perEpoch; batch++)
                {
                    var examples = order.Skip(batch * s.SftBatchSize).Take(s.SftBatchSize).Select(i => data[i]).ToArray();
                    // Data-parallel: this rank's contiguous share of the batch (as even as the count allows).
                    int n = examples.Length;
                    float loss = trainer.Step(examples[(rank * n / size)..((rank + 1) * n / size)]);
                    epochSum += loss;
                    epochSteps++;
                    step++;
                    log?.Log([new("step", step), new("epoch", epoch + 1), new("loss", loss),
                             new("learning_rate", trainer.Optimizer.LearningRate)]);
                    if (batch == perEpoch - 1)
                    {
                        last = (float)(epochSum / epochSteps);
                        epochSum = 0;
                        epochSteps = 0;
                        progress?.Invoke($"SFT epoch {epoch + 1}/{s.SftEpochs}  loss {last:F3}");
                    }
                    int stepsDone = step;
                    checkpoints?.SaveIfDue(step, b.Policy.Model, trainer.Optimizer, () => State(stepsDone),
                        final: step == total);
                }
            }
        }
        finally { b.Policy.Model.Eval(); }
        return new JsonObject { ["examples"] = data.Count, ["steps"] = step, ["last_epoch_loss"] = last };
    }

    /// <summary>Rejection sampling of <paramref name="policy"/> on fresh training problems; the kept set as JSONL at <paramref name="outPath"/>.</summary>
    public static (IReadOnlyList<SftExample> Kept, JsonObject Stats) Rejection(IPolicy policy, ITokenizer tokenizer, PromptTemplate template,
        VerifiableTask task, PipelineSettings s, ulong seed, string outPath, Action<string>? progress,
        IProcessGroup? group = null)
    {
        var problems = task.Generate(Split.Train, s.RejectionProblems, seed);
        var r = RejectionSampling.Run(policy, tokenizer, template, task, problems, s.RejectionSamples, Sampling(tokenizer, s.Grpo),
            new Generator(seed + 0xAB), outPath, s.KeepPerProblem, group: group);
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
        GrpoSettings s, Func<string, JsonObject> run, Action<string>? progress, IProcessGroup? group = null)
    {
        bool root = IsRoot(group);
        var dir = Path.Combine(runDir, name);
        var marker = Path.Combine(dir, StageFile);
        var modelDir = Path.Combine(dir, "model");
        // Rank 0's verdict (the others follow it, so that all run the stage or all skip it).
        bool finished = root && File.Exists(marker);
        if (group is { Size: > 1 }) finished = group.MaxCount(finished ? 1 : 0) > 0;
        if (finished)
        {
            progress?.Invoke($"{name}: already done, loading {modelDir}");
            var done = JsonNode.Parse(File.ReadAllText(marker)) as JsonObject ?? throw new InvalidDataException($"{marker}: expected a JSON object");
            var loaded = ModelBundle.Load(modelDir);
            b.Dispose();
            b = loaded;
            return done;
        }
        if (root) Directory.CreateDirectory(dir);
        progress?.Invoke($"== {name}");
        var clock = Stopwatch.StartNew();
        var record = run(dir);
        if (root) b.Save(modelDir);
        var after = Evaluate(b, task, heldOut, s);
        progress?.Invoke($"{name}: held-out accuracy {after.Accuracy:P1}, format {after.FormatRate:P0}");
        record["stage"] = name;
        record["model"] = Path.Combine(name, "model");
        record["seconds"] = clock.Elapsed.TotalSeconds;
        record["held_out_after"] = after.ToJson();
        // stage.json marks the stage finished, so it is written whole; the loop's checkpoints are then spent.
        if (root)
        {
            AtomicFile.WriteAllText(marker, record.ToJsonString(Indented));
            new RunCheckpoints(dir, _ => { }).Clear();
        }
        // The next stage may load this one's model (its GRPO reference): not before rank 0 has written it.
        if (group is { Size: > 1 }) group.Barrier();
        return record;
    }

    /// <summary>True for the rank that writes (rank 0, or the one process).</summary>
    public static bool IsRoot(IProcessGroup? group) => group == null || group.Rank == 0;

    public const string SummaryFile = "summary.json";

    /// <summary>Writes <c>summary.json</c> whole (its presence marks the run finished).</summary>
    public static void WriteSummary(string runDir, JsonObject summary, IProcessGroup? group = null)
    {
        if (IsRoot(group)) AtomicFile.WriteAllText(Path.Combine(runDir, SummaryFile), summary.ToJsonString(Indented));
    }

    /// <summary>
    /// Prepares <paramref name="runDir"/> for a pipeline run: refuses (or, with <see cref="CrashSafety.Overwrite"/>,
    /// empties) a directory of another configuration (<see cref="RunIdentity"/>). Returns the summary of a finished
    /// run of the same configuration (shown instead of running again), or null to run (or resume).
    /// </summary>
    public static JsonObject? Claim(string runDir, JsonObject identity, CrashSafety safety, Action<string>? progress,
        IProcessGroup? group = null)
    {
        safety.Validate();
        // Rank 0 claims (or refuses) the directory; the others follow its verdict once it is done.
        string? refused = null;
        if (IsRoot(group))
        {
            try
            {
                RunIdentity.Claim(runDir, identity, safety.Overwrite, "--run-dir",
                    m => progress?.Invoke(m.TrimEnd('\n')));
            }
            catch (ArgumentException e) when (group is { Size: > 1 }) { refused = e.Message; }
        }
        if (group is { Size: > 1 } && group.SumCount(refused == null ? 0 : 1) > 0)
            throw new ArgumentException(refused ?? $"rank 0 refused the run directory {runDir} (its error says why)");
        var summary = Path.Combine(runDir, SummaryFile);
        if (!File.Exists(summary)) return null;
        progress?.Invoke($"{runDir} is a finished run of this configuration; its summary.json is shown " +
                         "(--overwrite runs it again)");
        return JsonNode.Parse(File.ReadAllText(summary)) as JsonObject
               ?? throw new InvalidDataException($"{summary}: expected a JSON object");
    }
}
