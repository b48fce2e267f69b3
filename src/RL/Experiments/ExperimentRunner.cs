// Source: controls and ablations of GRPO as in DeepSeek-R1 (arXiv:2501.12948, §4.1 distillation vs RL), DAPO
// (arXiv:2503.14476, dynamic sampling), GSPO (arXiv:2507.18071) and the random-reward control of arXiv:2506.10947.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.Model;

namespace NativeReasoner.RL.Experiments;

/// <summary>Settings of <c>nr experiment NAME</c>.</summary>
public sealed record ExperimentSettings
{
    public required Experiment Experiment { get; init; }
    public required ExperimentScale Scale { get; init; }
    public IReadOnlyList<ulong> Seeds { get; init; } = [0, 1, 2];
    /// <summary>The experiment goes to RUNS/experiments/NAME/.</summary>
    public string RunsDirectory { get; init; } = "runs";
    public string Directory => Path.Combine(RunsDirectory, "experiments", Experiment.Name);
}

/// <summary>
/// Runs an experiment: per seed, one pre-training of the DeepSeek-V3 policy (<c>nr train</c>'s corpus and schedule)
/// shared by every arm, then each arm from that checkpoint with the same step budget and rollout shape, then the
/// same evaluation for all (greedy, and pass@1 averaged over K samples at temperature 0.6 / top-p 0.95 per level,
/// plus the unseen level 6). Each arm of each seed writes <c>ARM/seed-S/summary.json</c> and its
/// <c>metrics.jsonl</c>; a finished arm (its summary.json exists) and a finished pre-training are never redone, so
/// an interrupted experiment resumes arm by arm. At the end the seeds are aggregated (<see cref="ExperimentResults"/>).
/// The distill experiment first trains, per seed, the teacher (the pre-trained policy after GRPO) and pre-trains
/// the dense student on the same corpus.
/// </summary>
public static class ExperimentRunner
{
    /// <summary>Evaluation problems are the same for every seed and arm, so seeds differ only in training.</summary>
    public const ulong EvalSeed = 20250120;

    /// <summary>The R1 paper's sampling setting for pass@1 averaged over K samples.</summary>
    public const float EvalTemperature = 0.6f, EvalTopP = 0.95f;

    public static JsonObject Run(ExperimentSettings s, Action<string> progress, CancellationToken cancel = default)
    {
        if (s.Seeds.Count == 0) throw new ArgumentException("--seeds needs at least one seed");
        if (s.Seeds.Distinct().Count() != s.Seeds.Count)
            throw new ArgumentException($"--seeds repeats a seed: {string.Join(",", s.Seeds)}");
        ClaimDirectory(s);
        var task = TaskRegistry.Create("ladder");
        var tokenizer = new CharTokenizer();
        var template = new TrainSettings().Template;
        foreach (var seed in s.Seeds)
        {
            var seedDir = Path.Combine(s.Directory, $"seed-{seed}");
            var pretrained = Pretrain(s, s.Scale.Model, seed, Path.Combine(seedDir, "pretrained"), task, tokenizer,
                template, progress, cancel);
            if (pretrained == null) return Interrupted(progress);
            string? teacher = null, student = null;
            if (s.Experiment.NeedsTeacher)
            {
                teacher = TrainTeacher(s, seed, pretrained, Path.Combine(seedDir, "teacher"), task, tokenizer,
                    template, progress, cancel);
                if (teacher == null) return Interrupted(progress);
                student = Pretrain(s, s.Scale.Student, seed, Path.Combine(seedDir, "student-pretrained"), task,
                    tokenizer, template, progress, cancel);
                if (student == null) return Interrupted(progress);
            }
            foreach (var arm in s.Experiment.Arms)
            {
                var armDir = Path.Combine(s.Directory, arm.Name, $"seed-{seed}");
                if (File.Exists(Path.Combine(armDir, "summary.json")))
                {
                    progress($"{arm.Name} seed {seed}: finished before, kept\n");
                    continue;
                }
                var start = arm.Start == ArmStart.Student ? student! : pretrained;
                if (!RunArm(s, arm, seed, start, teacher, armDir, task, tokenizer, template, progress, cancel))
                    return Interrupted(progress);
            }
        }
        progress("aggregating over seeds\n");
        return ExperimentResults.Write(s);
    }

    private static JsonObject Interrupted(Action<string> progress)
    {
        progress("\ninterrupted: finished arms are kept; run the same command again to go on\n");
        return new JsonObject { ["interrupted"] = true };
    }

    /// <summary>
    /// experiment.json names the experiment and its scale; a directory written at another scale is refused, since
    /// mixing scales would average incomparable runs.
    /// </summary>
    private static void ClaimDirectory(ExperimentSettings s)
    {
        System.IO.Directory.CreateDirectory(s.Directory);
        var path = Path.Combine(s.Directory, "experiment.json");
        if (File.Exists(path))
        {
            var old = JsonNode.Parse(File.ReadAllText(path))!;
            var oldScale = old["scale"]?.GetValue<string>();
            if (oldScale != s.Scale.Name)
                throw new ArgumentException($"{s.Directory} holds the experiment at --scale {oldScale}, not " +
                    $"{s.Scale.Name}: use another --runs-dir or remove that directory");
        }
        var identity = new JsonObject
        {
            ["experiment"] = s.Experiment.Name, ["question"] = s.Experiment.Question, ["scale"] = s.Scale.Name,
            ["scale_settings"] = ScaleJson(s.Scale),
        };
        AtomicFile.WriteAllText(path, identity.ToJsonString(TrainPipeline.SummaryJson));
    }

    public static JsonObject ScaleJson(ExperimentScale c) => new()
    {
        ["model"] = c.Model.ModelType, ["student"] = c.Student.ModelType, ["pretrain_steps"] = c.PretrainSteps,
        ["pretrain_batch"] = c.PretrainBatch, ["arm_steps"] = c.ArmSteps, ["prompts_per_step"] = c.PromptsPerStep,
        ["num_generations"] = c.NumGenerations, ["max_completion_length"] = c.MaxCompletionLength,
        ["eval_problems"] = c.EvalProblems, ["sampled_problems"] = c.SampledProblems,
        ["eval_samples"] = c.EvalSamples, ["unseen_problems"] = c.UnseenProblems,
    };

    /// <summary>
    /// Pre-trains <paramref name="modelConfig"/> for <paramref name="seed"/> on <c>nr train</c>'s corpus
    /// (<see cref="PretrainCorpus"/>) and saves it with its evaluation; returns its directory, or null when
    /// cancelled. An existing one (its evaluation.json, written last, present) is reused.
    /// </summary>
    private static string? Pretrain(ExperimentSettings s, ICausalLMConfig modelConfig, ulong seed, string dir,
        VerifiableTask task, CharTokenizer tokenizer, PromptTemplate template, Action<string> progress,
        CancellationToken cancel)
    {
        var done = Path.Combine(dir, "evaluation.json");
        if (File.Exists(done))
        {
            progress($"pre-trained {modelConfig.ModelType} of seed {seed}: kept from before\n");
            return dir;
        }
        var train = new TrainSettings
        {
            Model = modelConfig, PretrainSteps = s.Scale.PretrainSteps, PretrainBatch = s.Scale.PretrainBatch,
            Seed = seed,
        };
        var config = modelConfig.ForTokenizer(tokenizer.VocabSize, tokenizer.EosId, tokenizer.BosId,
            tokenizer.PadId);
        using var model = config.Build(new Generator(seed + 17));
        var policy = new CausalLMPolicy(model);
        // nr train's warmup, shortened for budgets of fewer than 300 steps.
        int warmup = Math.Min(30, Math.Max(1, train.PretrainSteps / 10));
        using var sft = new SftTrainer(policy, tokenizer, template, train.PretrainLearningRate, train.PretrainSteps,
            warmupSteps: warmup, weightDecay: 0.01f);
        var clock = Stopwatch.StartNew();
        model.Train();
        float loss = float.NaN;
        for (int step = 0; step < train.PretrainSteps; step++)
        {
            if (cancel.IsCancellationRequested) return null;
            var batch = PretrainCorpus.Batch(task, train, step);
            float lr = StepBudget.WarmupCosine(train.PretrainLearningRate, warmup, step, train.PretrainSteps);
            loss = sft.Step(batch, lr);
            if (!float.IsFinite(loss))
                throw new InvalidOperationException($"pre-training of seed {seed} diverged at step {step + 1} " +
                                                    $"(loss {loss})");
            if (step % 25 == 0 || step == train.PretrainSteps - 1)
                progress($"\rpre-train {config.ModelType} seed {seed}: step {step + 1}/{train.PretrainSteps}  " +
                         $"loss {loss:F3}  {clock.Elapsed:mm\\:ss}   ");
        }
        progress("\n");
        System.IO.Directory.CreateDirectory(dir);
        model.Save(dir);
        var evaluation = Evaluate(s, policy, task, tokenizer, template);
        evaluation["pretrain_loss"] = loss;
        evaluation["pretrain_s"] = clock.Elapsed.TotalSeconds;
        evaluation["parameters"] = model.Parameters().Sum(p => p.Numel);
        AtomicFile.WriteAllText(done, evaluation.ToJsonString(TrainPipeline.SummaryJson));
        progress($"pre-trained {config.ModelType} seed {seed}: {Headline(evaluation)}\n");
        return dir;
    }

    /// <summary>
    /// The distill experiment's teacher: the seed's pre-trained policy after GRPO (accuracy + format).
    /// </summary>
    private static string? TrainTeacher(ExperimentSettings s, ulong seed, string pretrained, string dir,
        VerifiableTask task, CharTokenizer tokenizer, PromptTemplate template, Action<string> progress,
        CancellationToken cancel)
    {
        if (File.Exists(Path.Combine(dir, "summary.json")))
        {
            progress($"teacher of seed {seed}: kept from before\n");
            return Path.Combine(dir, "model");
        }
        var arm = new ExperimentArm("teacher", "DeepSeek-V3 teacher: the pre-trained policy after GRPO");
        return RunArm(s, arm, seed, pretrained, null, dir, task, tokenizer, template, progress, cancel, save: true)
            ? Path.Combine(dir, "model") : null;
    }

    /// <summary>The trainer settings every arm starts from: <c>nr train</c>'s, at the experiment's scale.</summary>
    public static GrpoConfig BaseTrainer(ExperimentSettings s, ulong seed) => new TrainSettings().Grpo.Trainer with
    {
        NumGenerations = s.Scale.NumGenerations,
        PromptsPerStep = s.Scale.PromptsPerStep,
        MaxCompletionLength = s.Scale.MaxCompletionLength,
        TotalSteps = s.Scale.ArmSteps,
        WarmupSteps = Math.Min(3, s.Scale.ArmSteps),
        EvalEvery = s.Scale.EvalEvery,
        EvalProblems = s.Scale.CurveProblems,
        NumIterations = s.Experiment.NumIterations,
        // Off in the base (nr train's default has it on): dynamic sampling draws extra rounds, which would break the
        // equal compute of the arms; the objectives experiment has an arm that turns it on.
        DynamicSampling = false,
        Seed = seed,
    };

    private static bool RunArm(ExperimentSettings s, ExperimentArm arm, ulong seed, string startDir,
        string? teacherDir, string armDir, VerifiableTask task, CharTokenizer tokenizer, PromptTemplate template,
        Action<string> progress, CancellationToken cancel, bool save = false)
    {
        System.IO.Directory.CreateDirectory(armDir);
        var metricsPath = Path.Combine(armDir, "metrics.jsonl");
        // A half-finished arm starts again from the shared checkpoint: its old log lines go.
        File.Delete(metricsPath);
        var trainer = BaseTrainer(s, seed);
        if (arm.Trainer != null) trainer = arm.Trainer(trainer);
        using var model = CausalLMRegistry.Load(startDir);
        var policy = new CausalLMPolicy(model);
        var clock = Stopwatch.StartNew();
        var compute = new ArmCompute();
        model.Train();
        bool finished = arm.Method == ArmMethod.Grpo
            ? TrainGrpo(arm, trainer, policy, task, tokenizer, template, metricsPath, compute, progress, cancel)
            : TrainOnVerified(s, arm, trainer, policy, teacherDir, task, tokenizer, template, metricsPath, compute,
                progress, cancel);
        progress("\n");
        if (!finished) return false;
        double trainSeconds = clock.Elapsed.TotalSeconds;
        var evaluation = Evaluate(s, policy, task, tokenizer, template);
        if (save) model.Save(Path.Combine(armDir, "model"));
        var summary = new JsonObject
        {
            ["experiment"] = s.Experiment.Name, ["arm"] = arm.Name, ["description"] = arm.Description,
            ["seed"] = seed, ["scale"] = s.Scale.Name, ["method"] = arm.Method.ToString(),
            ["reward"] = arm.Reward.ToString(), ["model"] = model.Config.ModelType,
            ["parameters"] = model.Parameters().Sum(p => p.Numel),
            ["trainer"] = TrainerJson(trainer), ["compute"] = compute.ToJson(),
            ["training"] = TrainingJson(metricsPath), ["after"] = evaluation,
            ["timings"] = new JsonObject { ["train_s"] = trainSeconds, ["total_s"] = clock.Elapsed.TotalSeconds },
        };
        // summary.json last: its presence marks the arm finished.
        AtomicFile.WriteAllText(Path.Combine(armDir, "summary.json"), summary.ToJsonString(TrainPipeline.SummaryJson));
        progress($"{arm.Name} seed {seed}: {Headline(evaluation)}  ({trainSeconds:F0} s training)\n");
        return true;
    }

    private static bool TrainGrpo(ExperimentArm arm, GrpoConfig config, CausalLMPolicy policy, VerifiableTask task,
        CharTokenizer tokenizer, PromptTemplate template, string metricsPath, ArmCompute compute,
        Action<string> progress, CancellationToken cancel)
    {
        using var trainer = new GrpoTrainer(policy, null, tokenizer, task, Rewards(arm.Reward, task, config.Seed),
            template, config, metricsPath);
        for (int step = 0; step < config.TotalSteps; step++)
        {
            if (cancel.IsCancellationRequested) return false;
            float lr = StepBudget.WarmupCosine(config.LearningRate, config.WarmupSteps, step, config.TotalSteps);
            var m = trainer.Step(lr).ToDictionary(kv => kv.Key, kv => kv.Value);
            if (!double.IsFinite(m["loss"]))
                throw new InvalidOperationException($"arm {arm.Name}: the loss is {m["loss"]} at step {step + 1}");
            int rounds = (int)m.GetValueOrDefault("dynamic_sampling/rounds", 1);
            compute.Add(sequences: config.PromptsPerStep * config.NumGenerations * rounds,
                tokens: m["num_tokens"] - compute.SampledTokens, updates: config.NumIterations,
                trained: config.PromptsPerStep * config.NumGenerations);
            progress($"\r{arm.Name}: step {step + 1}/{config.TotalSteps}  reward {m["reward"]:F2}  " +
                     $"acc {m["rewards/accuracy/mean"]:F2}" +
                     (m.TryGetValue("eval/accuracy", out var e) ? $"  held-out {e:P0}" : "") + "   ");
        }
        return true;
    }

    /// <summary>
    /// The reward of a GRPO arm. Accuracy is always in the set, weighted 0 where the arm does not reward it, so
    /// every arm logs the true accuracy of its rollouts (rewards/accuracy/mean).
    /// </summary>
    public static RewardSet Rewards(ArmReward reward, VerifiableTask task, ulong seed)
    {
        var set = new RewardSet();
        switch (reward)
        {
            case ArmReward.AccuracyFormat:
                set.Add(new AccuracyReward(task), 1f).Add(new FormatReward(), 0.5f);
                break;
            case ArmReward.Random:
                set.Add(new RandomReward(seed), 1f).Add(new AccuracyReward(task), 0f);
                break;
            case ArmReward.FormatOnly:
                set.Add(new FormatReward(), 0.5f).Add(new AccuracyReward(task), 0f);
                break;
        }
        return set;
    }

    /// <summary>
    /// SFT on verified samples, step for step in GRPO's shape: the step's prompts
    /// (<see cref="GrpoTrainer.DrawProblems"/>, the same GRPO draws), G samples each at the training temperature
    /// from the sampler (the policy itself, or the teacher), the correct and well-formed ones kept (each distinct
    /// text once per prompt), one SFT step on them.
    /// A step that keeps nothing updates nothing.
    /// </summary>
    private static bool TrainOnVerified(ExperimentSettings s, ExperimentArm arm, GrpoConfig config,
        CausalLMPolicy policy, string? teacherDir, VerifiableTask task, CharTokenizer tokenizer,
        PromptTemplate template, string metricsPath, ArmCompute compute, Action<string> progress,
        CancellationToken cancel)
    {
        if (arm.Method == ArmMethod.Distill && teacherDir == null)
            throw new InvalidOperationException($"arm {arm.Name} distils from a teacher, but none was trained");
        using var teacherModel = arm.Method == ArmMethod.Distill ? CausalLMRegistry.Load(teacherDir!) : null;
        IPolicy sampler = teacherModel != null ? new CausalLMPolicy(teacherModel) : policy;
        using var sft = new SftTrainer(policy, tokenizer, template, config.LearningRate, config.TotalSteps,
            config.WarmupSteps, config.WeightDecay, config.MaxGradNorm);
        using var log = new MetricsLogger(metricsPath);
        var rng = new Generator(config.Seed + 0x5EED);
        var verdict = new AccuracyReward(task);
        var options = new GenerationOptions
        {
            MaxNewTokens = config.MaxCompletionLength, Temperature = config.Temperature, TopP = config.TopP,
            EosTokenIds = [tokenizer.EosId],
        };
        var curve = config.EvalEvery > 0 ? task.Generate(Split.Test, config.EvalProblems, config.Seed) : [];
        var greedy = options with { Temperature = 0f };
        for (int step = 0; step < config.TotalSteps; step++)
        {
            if (cancel.IsCancellationRequested) return false;
            var problems = GrpoTrainer.DrawProblems(task, config, GrpoTrainer.PromptSeed(config, step));
            var prompts = problems.Select(p => tokenizer.Encode(template.Format(p.Prompt)).Select(i => (long)i)
                .ToArray()).ToArray();
            var repeated = prompts.SelectMany(p => Enumerable.Repeat(p, config.NumGenerations)).ToArray();
            var samples = sampler.Generate(repeated, options, rng);
            var kept = new List<SftExample>();
            int correct = 0;
            for (int g = 0; g < problems.Count; g++)
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                for (int j = 0; j < config.NumGenerations; j++)
                {
                    var sample = samples[g * config.NumGenerations + j];
                    var toks = sample.Tokens;
                    int n = toks.Length > 0 && toks[^1] == tokenizer.EosId ? toks.Length - 1 : toks.Length;
                    var text = tokenizer.Decode(toks.Take(n).Select(t => (int)t));
                    if (verdict.Score(new RewardInput(problems[g], text, toks.Length, sample.Truncated)) != 1f)
                        continue;
                    correct++;
                    // Truncated or malformed samples are not taught, even when their last boxed answer is right.
                    if (sample.Truncated || !FormatReward.IsWellFormed(text, template.ThinkPrefilled)) continue;
                    if (seen.Add(text)) kept.Add(new SftExample(problems[g].Prompt, text, problems[g].Answer,
                        problems[g].Difficulty));
                }
            }
            float lr = StepBudget.WarmupCosine(config.LearningRate, config.WarmupSteps, step, config.TotalSteps);
            float loss = kept.Count > 0 ? sft.Step(kept, lr) : float.NaN;
            if (kept.Count > 0 && !float.IsFinite(loss))
                throw new InvalidOperationException($"arm {arm.Name}: the loss is {loss} at step {step + 1}");
            long sampled = samples.Sum(x => (long)x.Tokens.Length) + prompts.Sum(p => (long)p.Length) *
                config.NumGenerations;
            compute.Add(sequences: repeated.Length, tokens: sampled, updates: kept.Count > 0 ? 1 : 0,
                trained: kept.Count);
            var m = new List<KeyValuePair<string, double>>
            {
                new("step", step + 1), new("rewards/accuracy/mean", correct / (double)repeated.Length),
                new("kept", kept.Count), new("loss", kept.Count > 0 ? loss : double.NaN), new("learning_rate", lr),
                new("num_tokens", compute.SampledTokens),
            };
            if (config.EvalEvery > 0 && (step + 1) % config.EvalEvery == 0)
            {
                var e = Evaluation.Run(policy, tokenizer, template, task, curve, greedy);
                m.Add(new("eval/accuracy", e.Accuracy));
                foreach (var (level, r) in e.ByDifficulty.OrderBy(kv => kv.Key))
                    m.Add(new($"eval/accuracy/level_{level}", r.Accuracy));
            }
            log.Log(m);
            progress($"\r{arm.Name}: step {step + 1}/{config.TotalSteps}  sample acc " +
                     $"{correct / (double)repeated.Length:F2}  kept {kept.Count}   ");
        }
        return true;
    }

    /// <summary>
    /// The evaluation every arm and every pre-trained model gets: greedy on the held-out problems, pass@1 averaged
    /// over K samples (and pass@k, maj@k) at temperature 0.6 / top-p 0.95 per level, and greedy on the unseen
    /// level 6. The problems depend on <see cref="EvalSeed"/> alone.
    /// </summary>
    public static JsonObject Evaluate(ExperimentSettings s, IPolicy policy, VerifiableTask task,
        CharTokenizer tokenizer, PromptTemplate template)
    {
        var greedyOptions = new GenerationOptions
        {
            MaxNewTokens = s.Scale.MaxCompletionLength, Temperature = 0f, EosTokenIds = [tokenizer.EosId],
        };
        var heldOut = task.Generate(Split.Test, s.Scale.EvalProblems, EvalSeed);
        var greedy = Evaluation.Run(policy, tokenizer, template, task, heldOut, greedyOptions);
        var sampledProblems = task.Generate(Split.Test, s.Scale.SampledProblems, EvalSeed + 1);
        var sampled = SampledEvaluation.Run(policy, tokenizer, template, task, sampledProblems,
            greedyOptions with { Temperature = EvalTemperature, TopP = EvalTopP }, s.Scale.EvalSamples, EvalSeed);
        var result = new JsonObject { ["greedy"] = greedy.ToJson(), ["sampled"] = sampled.ToJson() };
        if (s.Scale.UnseenProblems > 0 && task is LadderTask ladder)
        {
            var unseen = ladder.GenerateUnseen(Split.Test, s.Scale.UnseenProblems, EvalSeed);
            var u = Evaluation.Run(policy, tokenizer, template, task, unseen, greedyOptions);
            result["unseen_level_6"] = new JsonObject
            {
                ["n"] = unseen.Count, ["accuracy"] = u.Accuracy, ["think_rate"] = u.ThinkRate,
            };
        }
        result["examples"] = new JsonArray(heldOut.Take(3).Select((p, i) => (JsonNode)new JsonObject
        {
            ["problem"] = p.Prompt, ["answer"] = p.Answer, ["greedy"] = greedy.Completions[i],
        }).ToArray());
        return result;
    }

    private static string Headline(JsonObject evaluation)
    {
        double greedy = evaluation["greedy"]!["accuracy"]!.GetValue<double>();
        double pass1 = evaluation["sampled"]!["pass@1"]!.GetValue<double>();
        var unseen = evaluation["unseen_level_6"]?["accuracy"]?.GetValue<double>();
        return $"greedy {greedy:P1}, pass@1 {pass1:P1}" + (unseen is { } u ? $", level 6 {u:P1}" : "");
    }

    private static JsonObject TrainerJson(GrpoConfig t) => new()
    {
        ["steps"] = t.TotalSteps, ["prompts_per_step"] = t.PromptsPerStep, ["num_generations"] = t.NumGenerations,
        ["num_iterations"] = t.NumIterations, ["max_completion_length"] = t.MaxCompletionLength,
        ["learning_rate"] = t.LearningRate, ["loss_type"] = GrpoNames.Name(t.LossType),
        ["importance_sampling_level"] = GrpoNames.Name(t.ImportanceSamplingLevel),
        ["epsilon"] = t.EpsilonLow, ["epsilon_high"] = t.EpsilonHigh ?? t.EpsilonLow,
        ["routing_replay"] = t.RoutingReplay, ["dynamic_sampling"] = t.DynamicSampling,
        ["dynamic_sampling_max_rounds"] = t.DynamicSamplingMaxRounds, ["temperature"] = t.Temperature,
    };

    /// <summary>What the training log says at the end: means over the last quarter of the steps.</summary>
    private static JsonObject TrainingJson(string metricsPath)
    {
        var rows = File.ReadLines(metricsPath).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
        var tail = rows.Skip(rows.Length - Math.Max(1, rows.Length / 4)).ToArray();
        var o = new JsonObject { ["last_quarter_steps"] = tail.Length };
        foreach (var key in new[] { "reward", "rewards/accuracy/mean", "rewards/format/mean", "router_shift/mean",
                     "frac_reward_zero_std", "dynamic_sampling/rounds", "entropy", "completions/mean_length", "kept" })
        {
            var values = tail.Select(r => r[key]).Where(v => v != null && v.GetValueKind() == JsonValueKind.Number)
                .Select(v => v!.GetValue<double>()).Where(double.IsFinite).ToArray();
            if (values.Length > 0) o[key] = values.Average();
        }
        return o;
    }

    /// <summary>What an arm spent: sampled sequences and tokens, optimizer updates, sequences trained on.</summary>
    private sealed class ArmCompute
    {
        public long Sequences, Updates, Trained;
        public double SampledTokens;

        public void Add(long sequences, double tokens, long updates, long trained)
        {
            Sequences += sequences;
            SampledTokens += tokens;
            Updates += updates;
            Trained += trained;
        }

        public JsonObject ToJson() => new()
        {
            ["sampled_sequences"] = Sequences, ["sampled_tokens"] = SampledTokens, ["optimizer_updates"] = Updates,
            ["trained_sequences"] = Trained,
        };
    }
}
