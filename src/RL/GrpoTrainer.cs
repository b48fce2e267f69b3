using System.Diagnostics;
using NativeReasoner.Model;
using NativeReasoner.Optim;

namespace NativeReasoner.RL;

/// <summary>GRPO training settings (TRL names in the comments).</summary>
public sealed record GrpoConfig
{
    /// <summary>G (<c>num_generations</c>): completions sampled per prompt, ≥ 2.</summary>
    public int NumGenerations { get; init; } = 8;
    /// <summary>Prompts per generation batch (the batch has PromptsPerStep × G completions).</summary>
    public int PromptsPerStep { get; init; } = 4;
    /// <summary>μ (<c>num_iterations</c>): optimizer steps per generation batch; μ &gt; 1 computes old log-probs.</summary>
    public int NumIterations { get; init; } = 1;
    public int MaxCompletionLength { get; init; } = 64;
    public float Temperature { get; init; } = 1f;
    public float TopP { get; init; } = 1f;
    public int TopK { get; init; }
    public LossType LossType { get; init; } = LossType.Dapo;
    public ScaleRewards ScaleRewards { get; init; } = ScaleRewards.Group;
    public float Beta { get; init; }
    public float EpsilonLow { get; init; } = 0.2f;
    public float? EpsilonHigh { get; init; }
    public bool MaskTruncatedCompletions { get; init; }
    /// <summary>
    /// Token ratios (GRPO) or one clipped ratio per completion (GSPO) (<c>importance_sampling_level</c>).
    /// </summary>
    public ImportanceSamplingLevel ImportanceSamplingLevel { get; init; }
    /// <summary>grpo (with <see cref="ScaleRewards"/>), rloo or reinforce_pp advantages.</summary>
    public AdvantageEstimator AdvantageEstimator { get; init; }
    public float LearningRate { get; init; } = 1e-5f;
    public float WeightDecay { get; init; }
    public float MaxGradNorm { get; init; } = 1f;
    public int WarmupSteps { get; init; }
    /// <summary>Generation batches planned (the cosine schedule's length, in optimizer steps ×μ).</summary>
    public int TotalSteps { get; init; } = 100;
    /// <summary>Held-out evaluation every N steps (0 = never).</summary>
    public int EvalEvery { get; init; }
    public int EvalProblems { get; init; } = 32;
    /// <summary>
    /// Relative weight of each difficulty level (index 0 = level 1) when drawing training prompts; null cycles
    /// the levels evenly. Lets a run spend its samples where groups still disagree (reward variance).
    /// </summary>
    public IReadOnlyList<double>? DifficultyWeights { get; init; }
    public ulong Seed { get; init; }
    /// <summary>
    /// Where the policy's device has a fused GRPO token-loss kernel (CUDA), compute the loss with it straight from
    /// the logits (<see cref="RolloutBatch.FusedLoss"/>; same value and gradients). False keeps the composition
    /// log-probs → <see cref="GrpoLoss.Compute"/> everywhere (for comparisons).
    /// </summary>
    public bool FusedLoss { get; init; } = true;
    /// <summary>
    /// DAPO dynamic sampling: drop groups whose rewards all equal and sample more prompts (see <see
    /// cref="DynamicSampling"/>).
    /// </summary>
    public bool DynamicSampling { get; init; }
    /// <summary>Cap on sampling rounds per step when <see cref="DynamicSampling"/> is on, the first included.</summary>
    public int DynamicSamplingMaxRounds { get; init; } = 3;
    /// <summary>
    /// MoE policies: replay the rollout's expert choices in the old-policy, reference and update passes (see
    /// <see cref="RoutingReplay"/>). The router-shift metric is logged whenever a recording exists (replay on, or μ
    /// &gt; 1).
    /// </summary>
    public bool RoutingReplay { get; init; }

    public GrpoConfig Validate()
    {
        if (NumGenerations < 2) throw new ArgumentException($"num_generations must be ≥ 2 (a group needs a baseline), got {NumGenerations}");
        if (PromptsPerStep < 1) throw new ArgumentException($"prompts per step must be ≥ 1, got {PromptsPerStep}");
        if (NumIterations < 1) throw new ArgumentException($"num_iterations must be ≥ 1, got {NumIterations}");
        if (MaxCompletionLength < 1) throw new ArgumentException($"max_completion_length must be ≥ 1, got {MaxCompletionLength}");
        if (DynamicSamplingMaxRounds < 1)
            throw new ArgumentException($"dynamic_sampling_max_rounds must be ≥ 1, got {DynamicSamplingMaxRounds}");
        if (!(Temperature > 0)) throw new ArgumentException($"temperature must be > 0 for GRPO sampling, got {Temperature}");
        return this;
    }
}

/// <summary>Held-out results: overall and by difficulty level.</summary>
public sealed record EvalReport(double Accuracy, double FormatRate, double ThinkRate, double MeanLength,
    IReadOnlyDictionary<int, (double Accuracy, double FormatRate, double ThinkRate, double MeanLength, int Count)> ByDifficulty)
{
    /// <summary>The completion text of each problem, in order.</summary>
    public IReadOnlyList<string> Completions { get; init; } = [];

    /// <summary>As JSON: overall numbers and by_difficulty.</summary>
    public System.Text.Json.Nodes.JsonObject ToJson()
    {
        var by = new System.Text.Json.Nodes.JsonObject();
        foreach (var (level, v) in ByDifficulty.OrderBy(kv => kv.Key))
            by[level.ToString()] = new System.Text.Json.Nodes.JsonObject
            {
                ["n"] = v.Count, ["accuracy"] = v.Accuracy, ["format_rate"] = v.FormatRate, ["think_rate"] = v.ThinkRate, ["mean_completion_length"] = v.MeanLength,
            };
        return new System.Text.Json.Nodes.JsonObject
        {
            ["accuracy"] = Accuracy, ["format_rate"] = FormatRate, ["think_rate"] = ThinkRate, ["mean_completion_length"] = MeanLength, ["by_difficulty"] = by,
        };
    }
}

/// <summary>
/// The GRPO loop. Each <see cref="Step"/>: draw prompts from the task's training split, sample G
/// completions each, score them with the reward set, compute group advantages, then take μ optimizer
/// steps on the clipped GRPO loss (old log-probs from before the first step when μ &gt; 1; reference
/// log-probs when β ≠ 0), with gradient clipping, AdamW and a warmup + cosine LR. Every metric goes to
/// <c>metrics.jsonl</c> (when a path is given) and is returned.
/// </summary>
public sealed class GrpoTrainer : IDisposable
{
    private readonly IPolicy _policy;
    private readonly IPolicy? _reference;
    private readonly ITokenizer _tokenizer;
    private readonly VerifiableTask _task;
    private readonly RewardSet _rewards;
    private readonly PromptTemplate _template;
    private readonly AdamW _optimizer;
    private readonly ILrSchedule _schedule;
    private readonly MetricsLogger? _logger;
    private Generator _rng;
    private readonly IReadOnlyList<Problem> _heldOut;
    private long _tokensSeen;
    private int _optimizerSteps;

    public GrpoConfig Config { get; }
    /// <summary>The optimizer, for saving and restoring its state beside a checkpoint.</summary>
    public AdamW Optimizer => _optimizer;
    public int StepIndex { get; private set; }

    public GrpoTrainer(IPolicy policy, IPolicy? reference, ITokenizer tokenizer, VerifiableTask task, RewardSet rewards,
        PromptTemplate template, GrpoConfig config, string? metricsPath = null)
    {
        Config = config.Validate();
        if (config.Beta != 0 && reference == null) throw new ArgumentException("beta ≠ 0 needs a frozen reference policy");
        if (config.RoutingReplay && RoutingReplay.MoeModel(policy) == null)
            throw new ArgumentException("routing_replay needs a DeepSeek-V3/R1 policy with MoE layers (the other " +
                "families record no routing yet): turn it off for this model");
        _policy = policy;
        _reference = reference;
        _tokenizer = tokenizer;
        _task = task;
        _rewards = rewards;
        _template = template;
        _optimizer = new AdamW(policy.Parameters(), config.LearningRate, weightDecay: config.WeightDecay);
        _schedule = new CosineDecay(config.LearningRate, config.WarmupSteps, Math.Max(1, config.TotalSteps * config.NumIterations), 0.1f);
        _logger = metricsPath == null ? null : new MetricsLogger(metricsPath);
        _rng = new Generator(config.Seed + 0x5EED);
        _heldOut = config.EvalEvery > 0 ? task.Generate(Split.Test, config.EvalProblems, config.Seed) : [];
    }

    /// <summary>
    /// Continues a run interrupted after <paramref name="step"/> generation batches: prompts, the evaluation cadence
    /// and the step schedule go on from there, and sampling draws from a stream seeded by the step (so a resume
    /// from the same checkpoint is reproducible).
    /// </summary>
    public void ResumeAt(int step)
    {
        if (step < 0) throw new ArgumentException($"resume step must be ≥ 0, got {step}");
        StepIndex = step;
        _optimizerSteps = step * Config.NumIterations;
        _rng = new Generator(Config.Seed + 0x5EED + (ulong)step * 0x9E3779B9UL);
    }

    /// <summary>
    /// What a checkpoint needs beyond <see cref="ResumeAt"/> for a resumed run to equal an uninterrupted one: the
    /// sampler's exact stream position and the token count reported as <c>num_tokens</c>.
    /// </summary>
    public (ulong[] Sampler, long TokensSeen) ExportSamplingState() => (_rng.GetState(), _tokensSeen);

    /// <summary>
    /// Restores <see cref="ExportSamplingState"/> (after <see cref="ResumeAt"/>, which reseeds the sampler).
    /// </summary>
    public void RestoreSamplingState(IReadOnlyList<ulong> sampler, long tokensSeen)
    {
        if (tokensSeen < 0) throw new ArgumentException($"tokens seen must be ≥ 0, got {tokensSeen}");
        _rng = Generator.FromState(sampler);
        _tokensSeen = tokensSeen;
    }

    /// <summary>
    /// Whether <see cref="Step"/> computes the loss with the fused token-loss kernel: <see cref="GrpoConfig.FusedLoss"/>
    /// and the policy's parameters on a device that has one (the kernel's ratio is per token and its
    /// forwards are laid out differently: GSPO and routing replay take the composition).
    /// </summary>
    public bool UsesFusedLoss => Config.FusedLoss && Config.ImportanceSamplingLevel == ImportanceSamplingLevel.Token
        && !Config.RoutingReplay
        && _policy.Parameters().FirstOrDefault() is { } p && Functional.HasFusedGrpoTokenLoss(p.Device);

    public GenerationOptions SamplingOptions => new()
    {
        MaxNewTokens = Config.MaxCompletionLength,
        Temperature = Config.Temperature,
        TopP = Config.TopP,
        TopK = Config.TopK,
        EosTokenIds = [_tokenizer.EosId],
    };

    public long[] EncodePrompt(string question) => _tokenizer.Encode(_template.Format(question)).Select(i => (long)i).ToArray();

    /// <summary>Completion text: the sampled tokens without the final EOS (other special tokens kept).</summary>
    public string DecodeCompletion(long[] tokens)
    {
        int n = tokens.Length > 0 && tokens[^1] == _tokenizer.EosId ? tokens.Length - 1 : tokens.Length;
        return _tokenizer.Decode(tokens.Take(n).Select(t => (int)t));
    }

    /// <summary>
    /// One generation batch and its μ optimizer steps; returns the logged metrics. A given
    /// <paramref name="learningRate"/> replaces the step schedule (for runs scheduled by wall time).
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, double>> Step(float? learningRate = null)
    {
        var clock = Stopwatch.StartNew();
        int G = Config.NumGenerations;
        long generated = 0, promptTokens = 0;
        IReadOnlyList<RolloutGroup> SampleRound(int round)
        {
            // Round 0 draws this step's prompts as plain GRPO does; later rounds (dynamic sampling) draw fresh ones.
            ulong seed = PromptSeed(Config, StepIndex) + (ulong)round * 0x9E3779B97F4A7C15UL;
            var drawn = DrawProblems(seed);
            var encoded = drawn.Select(p => EncodePrompt(p.Prompt)).ToArray();
            var repeated = encoded.SelectMany(p => Enumerable.Repeat(p, G)).ToArray();
            var all = _policy.Generate(repeated, SamplingOptions, _rng);
            var total = _rewards.Score(all.Select((s, i) => Input(drawn[i / G], s)).ToArray()).Total;
            generated += all.Sum(s => (long)s.Tokens.Length);
            promptTokens += encoded.Sum(p => (long)p.Length) * G;
            return drawn.Select((p, g) =>
                new RolloutGroup(p, encoded[g], all.Skip(g * G).Take(G).ToArray(), total[(g * G)..((g + 1) * G)]))
                .ToArray();
        }
        var sampling = DynamicSampling.Fill(Config.PromptsPerStep, Config.DynamicSamplingMaxRounds,
            Config.DynamicSampling, SampleRound, g => g.Rewards);
        var problems = sampling.Groups.Select(g => g.Problem).ToArray();
        var prompts = sampling.Groups.Select(g => g.Prompt).ToArray();
        var samples = sampling.Groups.SelectMany(g => g.Samples).ToArray();
        // Scored again as one batch for the per-reward statistics (rewards are deterministic: same totals).
        var inputs = samples.Select((s, i) => Input(problems[i / G], s)).ToArray();
        var scores = _rewards.Score(inputs);
        var adv = AdvantageEstimators.Compute(scores.Total, G, Config.AdvantageEstimator, Config.ScaleRewards);
        var batch = new RolloutBatch(prompts, samples, G);

        var options = new GrpoLossOptions
        {
            LossType = Config.LossType,
            Beta = Config.Beta,
            EpsilonLow = Config.EpsilonLow,
            EpsilonHigh = Config.EpsilonHigh,
            MaxCompletionLength = Config.MaxCompletionLength,
            ImportanceSamplingLevel = Config.ImportanceSamplingLevel,
        };
        double loss = 0, kl = 0, low = 0, high = 0, region = 0, gradNorm = 0;
        float entropy = float.NaN;
        RoutingTape? tape = null;
        int topK = 0;
        var shift = new Dictionary<string, double>();
        using (var outer = new TensorScope())
        {
            var mask = batch.MaskTensor(Config.MaskTruncatedCompletions);
            var maskArr = mask.ToArray();
            // dapo normalises by the active tokens of the whole generation batch.
            options = options with { NumItemsInBatch = maskArr.Sum() };
            var advT = Tensor.FromArray(adv.Values, adv.Values.Length);
            Tensor? old = null, reference = null;
            bool fused = UsesFusedLoss;
            // Routing replay: the recording pass is the old-policy pass (run for it when μ = 1 too).
            var moe = RoutingReplay.MoeModel(_policy);
            // Detached when this block ends, however it ends: sampling and evaluation route freely.
            using var detach = RoutingReplay.DetachOnDispose(moe);
            // (The fused loss lays its forwards out differently, so it gets no tape; replay turns it off.)
            bool record = moe != null && !fused && (Config.RoutingReplay || Config.NumIterations > 1);
            tape = record ? new RoutingTape() : null;
            topK = moe?.Config.NumExpertsPerTok ?? 0;
            moe?.AttachRoutingTape(tape);
            using (Tensor.NoGrad())
            {
                if (Config.NumIterations > 1 || tape != null)
                {
                    var recorded = batch.LogProbs(_policy, Config.Temperature);
                    if (Config.NumIterations > 1) old = recorded;
                }
                if (tape != null) tape.Mode = Config.RoutingReplay ? RoutingTapeMode.Replay : RoutingTapeMode.Observe;
                if (Config.Beta != 0)
                {
                    var refMoe = Config.RoutingReplay ? RoutingReplay.MoeModel(_reference) : null;
                    tape?.Rewind();
                    refMoe?.AttachRoutingTape(tape);
                    try { reference = batch.LogProbs(_reference!, Config.Temperature); }
                    finally { refMoe?.AttachRoutingTape(null); }
                }
            }
            // The fused kernel takes the old and reference log-probs as plain per-token data: one download each per batch.
            var oldHost = fused ? old?.ToArray() : null;
            var refHost = fused ? reference?.ToArray() : null;
            for (int it = 0; it < Config.NumIterations; it++)
            {
                using var scope = new TensorScope();
                tape?.Rewind();
                var ent = it == 0 ? new float[batch.Count * batch.MaxCompletion] : null;
                using var result = fused
                    ? batch.FusedLoss(_policy, Config.Temperature, oldHost, refHost, adv.Values, maskArr, options, ent)
                    : GrpoLoss.Compute(batch.LogProbs(_policy, Config.Temperature, ent), old, reference, advT, mask, options);
                if (ent != null) entropy = GrpoLoss.MaskedMean(ent, maskArr);
                if (tape != null)
                    foreach (var (name, value) in RoutingReplay.ShiftMetrics(tape, topK, batch))
                        shift[name] = shift.GetValueOrDefault(name) + value / Config.NumIterations;
                result.Loss.Backward();
                float norm = GradClip.ClipGradNorm(_policy.Parameters(), Config.MaxGradNorm);
                _optimizer.LearningRate = learningRate ?? _schedule.LearningRate(_optimizerSteps);
                // A non-finite gradient would poison the weights: skip that update, keep the log.
                if (float.IsFinite(norm)) _optimizer.Step();
                _optimizer.ZeroGrad();
                _optimizerSteps++;
                loss += result.Loss.Item() / Config.NumIterations;
                kl += result.Kl / Config.NumIterations;
                low += result.ClipRatioLow / Config.NumIterations;
                high += result.ClipRatioHigh / Config.NumIterations;
                region += result.ClipRatioRegion / Config.NumIterations;
                gradNorm += norm / Config.NumIterations;
            }
        }

        var lengths = samples.Select(s => s.Tokens.Length).ToArray();
        _tokensSeen += generated + promptTokens;
        double seconds = clock.Elapsed.TotalSeconds;
        var m = new List<KeyValuePair<string, double>>
        {
            new("step", StepIndex + 1),
            new("reward", Advantages.NanMean(scores.Total)),
            new("reward_std", adv.GroupStd.Where(float.IsFinite).DefaultIfEmpty(0f).Average()),
        };
        foreach (var (name, mean, std) in scores.Summary())
        {
            m.Add(new($"rewards/{name}/mean", mean));
            m.Add(new($"rewards/{name}/std", std));
        }
        // Over every group sampled this step (all rounds): how much of the sampling carried no signal.
        m.Add(new("frac_reward_zero_std", sampling.FracRewardZeroStd));
        if (Config.DynamicSampling)
        {
            m.Add(new("dynamic_sampling/rounds", sampling.Rounds));
            m.Add(new("dynamic_sampling/zero_std_kept", sampling.ZeroStdKept));
        }
        m.Add(new("completions/mean_length", lengths.Average()));
        m.Add(new("completions/min_length", lengths.Min()));
        m.Add(new("completions/max_length", lengths.Max()));
        m.Add(new("completions/clipped_ratio", samples.Count(s => s.Truncated) / (double)samples.Length));
        // Behaviour of the rollouts (thinking length correct vs incorrect, verification, self-correction) per level.
        var verdict = new AccuracyReward(_task);
        m.AddRange(BehaviourAnalytics.Metrics("behaviour", BehaviourAnalytics.ByDifficulty(inputs.Select(x =>
            (x.Problem.Difficulty, BehaviourAnalytics.Analyse(x.Completion, _tokenizer, _template.ThinkPrefilled),
             verdict.Score(x) == 1f))), perLevel: true));
        m.Add(new("loss", loss));
        if (Config.Beta != 0) m.Add(new("kl", kl));
        m.Add(new("entropy", entropy));
        m.Add(new("clip_ratio/low_mean", low));
        m.Add(new("clip_ratio/high_mean", high));
        m.Add(new("clip_ratio/region_mean", region));
        foreach (var (name, value) in shift.OrderBy(kv => kv.Key == "router_shift/mean" ? "" : kv.Key))
            m.Add(new(name, value));
        m.Add(new("grad_norm", gradNorm));
        m.Add(new("learning_rate", _optimizer.LearningRate));
        m.Add(new("num_tokens", _tokensSeen));
        m.Add(new("step_time", seconds));
        m.Add(new("tokens_per_second", generated / Math.Max(seconds, 1e-9)));
        StepIndex++;
        if (Config.EvalEvery > 0 && StepIndex % Config.EvalEvery == 0)
        {
            var e = Evaluate(_heldOut);
            m.Add(new("eval/accuracy", e.Accuracy));
            m.Add(new("eval/format", e.FormatRate));
            m.Add(new("eval/think_rate", e.ThinkRate));
            m.Add(new("eval/mean_length", e.MeanLength));
            foreach (var (level, r) in e.ByDifficulty.OrderBy(kv => kv.Key)) m.Add(new($"eval/accuracy/level_{level}", r.Accuracy));
            m.AddRange(BehaviourAnalytics.Metrics("eval/behaviour", BehaviourAnalytics.Measure(_heldOut,
                e.Completions, _task, _tokenizer, _template.ThinkPrefilled), perLevel: true));
        }
        _logger?.Log(m);
        return m;
    }

    private RewardInput Input(Problem problem, SampledSequence s) =>
        new(problem, DecodeCompletion(s.Tokens), s.Tokens.Length, s.Truncated);

    private IReadOnlyList<Problem> DrawProblems(ulong seed) => DrawProblems(_task, Config, seed);

    /// <summary>
    /// The first sampling round's seed of step <paramref name="step"/> (0-based), so other training loops (SFT on
    /// verified samples) can train on exactly the prompts GRPO would.
    /// </summary>
    public static ulong PromptSeed(GrpoConfig config, int step) => config.Seed + 1 + (ulong)step * 7919UL;

    /// <summary>A step's training prompts: levels cycled evenly, or drawn by <see cref="GrpoConfig.DifficultyWeights"/>.</summary>
    public static IReadOnlyList<Problem> DrawProblems(VerifiableTask task, GrpoConfig config, ulong seed)
    {
        var w = config.DifficultyWeights;
        if (w == null) return task.Generate(Split.Train, config.PromptsPerStep, seed);
        if (w.Count != task.MaxDifficulty || w.Any(x => !(x >= 0)) || w.Sum() <= 0)
            throw new ArgumentException($"difficulty weights need {task.MaxDifficulty} non-negative values (task '{task.Name}'), not all 0");
        var pick = new Generator(seed ^ 0xD1FF1C01UL);
        var result = new List<Problem>(config.PromptsPerStep);
        for (int i = 0; i < config.PromptsPerStep; i++)
        {
            double u = pick.NextDouble() * w.Sum();
            int level = 1;
            for (; level < w.Count && u >= w[level - 1]; level++) u -= w[level - 1];
            result.Add(task.Generate(Split.Train, 1, seed + (ulong)i * 104729UL, level)[0]);
        }
        return result;
    }

    /// <summary>Greedy completions of <paramref name="problems"/>: accuracy, format and think rates, mean length, by level.</summary>
    public EvalReport Evaluate(IReadOnlyList<Problem> problems) =>
        Evaluation.Run(_policy, _tokenizer, _template, _task, problems, SamplingOptions with { Temperature = 0f });

    public void Dispose()
    {
        _optimizer.Dispose();
        _logger?.Dispose();
    }
}

/// <summary>Held-out evaluation shared by the trainer and <c>nr eval</c>.</summary>
public static class Evaluation
{
    public static EvalReport Run(IPolicy policy, ITokenizer tokenizer, PromptTemplate template, VerifiableTask task,
        IReadOnlyList<Problem> problems, GenerationOptions options, ulong seed = 0)
    {
        if (problems.Count == 0) return new EvalReport(double.NaN, double.NaN, double.NaN, double.NaN, new Dictionary<int, (double, double, double, double, int)>());
        var prompts = problems.Select(p => tokenizer.Encode(template.Format(p.Prompt)).Select(i => (long)i).ToArray()).ToArray();
        var samples = policy.Generate(prompts, options, new Generator(seed));
        var acc = new AccuracyReward(task);
        var rows = problems.Select((p, i) =>
        {
            var toks = samples[i].Tokens;
            int n = toks.Length > 0 && toks[^1] == tokenizer.EosId ? toks.Length - 1 : toks.Length;
            var text = tokenizer.Decode(toks.Take(n).Select(t => (int)t));
            var input = new RewardInput(p, text, toks.Length, samples[i].Truncated);
            bool think = FormatReward.IsWellFormed(text, template.ThinkPrefilled) || text.Contains(CharTokenizer.ThinkEnd, StringComparison.Ordinal);
            return (p.Difficulty, Text: text, Acc: (double)(acc.Score(input) ?? 0f), Fmt: FormatReward.IsWellFormed(text, template.ThinkPrefilled) ? 1.0 : 0.0, Think: think ? 1.0 : 0.0, Len: (double)toks.Length);
        }).ToArray();
        var by = rows.GroupBy(r => r.Difficulty).ToDictionary(g => g.Key,
            g => (g.Average(r => r.Acc), g.Average(r => r.Fmt), g.Average(r => r.Think), g.Average(r => r.Len), g.Count()));
        return new EvalReport(rows.Average(r => r.Acc), rows.Average(r => r.Fmt), rows.Average(r => r.Think), rows.Average(r => r.Len), by)
        {
            Completions = rows.Select(r => r.Text).ToArray(),
        };
    }
}
