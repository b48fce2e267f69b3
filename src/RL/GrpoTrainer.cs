using System.Diagnostics;
using NativeReasoner.Distributed;
using NativeReasoner.Kernels;
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

/// <summary>
/// Bytes one rank handed to the collectives in a distributed GRPO step: the gradient all-reduce (every optimizer
/// iteration), its completions in the rollout gather (padded to the longest rank's), and the small bookkeeping
/// (dynamic-sampling verdicts, token counts, metric sums).
/// </summary>
public sealed record GrpoTraffic(long GradientBytes, long RolloutBytes, long ControlBytes)
{
    public long TotalBytes => GradientBytes + RolloutBytes + ControlBytes;
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
    private readonly IProcessGroup? _group;
    private readonly GradientAllReducer? _gradients;
    private readonly IReadOnlyList<Problem> _heldOut;
    private long _tokensSeen;
    private int _optimizerSteps;

    public GrpoConfig Config { get; }
    /// <summary>The optimizer, for saving and restoring its state beside a checkpoint.</summary>
    public AdamW Optimizer => _optimizer;
    public int StepIndex { get; private set; }

    /// <summary>
    /// The completions of the last <see cref="Step"/>'s batch, every rank's, in batch order (prompt-major, G per
    /// prompt): what one process would have sampled.
    /// </summary>
    public IReadOnlyList<SampledSequence> LastRollouts { get; private set; } = [];

    /// <param name="group">
    /// The ranks of a distributed run (null or one rank: this process alone). Every rank draws the whole batch of
    /// prompts, samples and scores the prompts i with i mod size = rank (each completion from a generator seeded by
    /// the step and its place in the batch, so the rollouts do not depend on the rank count), and the completions
    /// are gathered; the loss of kept group k is computed on rank k mod size with the whole batch's normaliser, the
    /// gradients are summed over the ranks and every rank takes the same optimizer step. Only rank 0 logs and
    /// evaluates.
    /// </param>
    public GrpoTrainer(IPolicy policy, IPolicy? reference, ITokenizer tokenizer, VerifiableTask task, RewardSet rewards,
        PromptTemplate template, GrpoConfig config, string? metricsPath = null, IProcessGroup? group = null)
    {
        Config = config.Validate();
        if (group is { Size: > 1 } && config.PromptsPerStep % group.Size != 0)
            throw new ArgumentException($"prompts per step ({config.PromptsPerStep}) do not divide over {group.Size} " +
                $"ranks: give a multiple of {group.Size}");
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
        bool root = group == null || group.Rank == 0;
        _logger = metricsPath == null || !root ? null : new MetricsLogger(metricsPath);
        _heldOut = config.EvalEvery > 0 && root ? task.Generate(Split.Test, config.EvalProblems, config.Seed) : [];
        if (group is { Size: > 1 })
        {
            _group = group;
            // Every rank starts from rank 0's weights, whatever each built or loaded.
            GradientAllReducer.Broadcast(group, policy.Parameters());
            _gradients = new GradientAllReducer(group, policy.Parameters());
        }
    }

    private int Rank => _group?.Rank ?? 0;

    private int Size => _group?.Size ?? 1;

    /// <summary>Bytes this rank hands to the gradient all-reduce per optimizer step (0 in one process).</summary>
    public long GradientBytesPerStep => _gradients?.BytesPerStep ?? 0;

    /// <summary>What this rank handed to the collectives in the last <see cref="Step"/> (0 in one process).</summary>
    public GrpoTraffic LastStepTraffic { get; private set; } = new(0, 0, 0);

    private long _rolloutBytes, _controlBytes;

    /// <summary>
    /// Continues a run interrupted after <paramref name="step"/> generation batches: prompts, the evaluation cadence
    /// and the step schedule go on from there. Every completion is sampled from a generator seeded by its step and
    /// place in the batch (<see cref="RolloutSeed"/>), so a resume from the same checkpoint samples what an
    /// uninterrupted run would.
    /// </summary>
    public void ResumeAt(int step)
    {
        if (step < 0) throw new ArgumentException($"resume step must be ≥ 0, got {step}");
        StepIndex = step;
        _optimizerSteps = step * Config.NumIterations;
    }

    /// <summary>
    /// The prompt and completion tokens sampled so far (<c>num_tokens</c>): what a checkpoint keeps beyond
    /// <see cref="ResumeAt"/> for a resumed run to log what an uninterrupted one would.
    /// </summary>
    public long TokensSeen
    {
        get => _tokensSeen;
        set => _tokensSeen = value >= 0 ? value : throw new ArgumentException($"tokens seen must be ≥ 0, got {value}");
    }

    /// <summary>
    /// The seed of completion <paramref name="completion"/> of prompt <paramref name="prompt"/> (its index in the
    /// whole batch of sampling round <paramref name="round"/>) at the current step: the same on any rank and for any
    /// rank count. The generator's SplitMix64 seeding spreads these nearby values into unrelated streams.
    /// </summary>
    private ulong RolloutSeed(int round, int prompt, int completion) =>
        Config.Seed + 0x5EED + (ulong)StepIndex * 0x9E3779B97F4A7C15UL + (ulong)round * 0xD1B54A32D192ED03UL
        + (ulong)prompt * 0x8CB92BA72F3D8DD7UL + (ulong)completion * 0xF1357AEA2E62A9C5UL;

    /// <summary>
    /// Whether <see cref="Step"/> computes the loss with the fused token-loss kernel: <see cref="GrpoConfig.FusedLoss"/>
    /// and the policy's parameters on a device that has one (the kernel's ratio is per token and its
    /// forwards are laid out differently: GSPO and routing replay take the composition, and so does an MoE policy
    /// at μ > 1, whose router shift between the old-policy pass and the updates is measured on the composition's
    /// forwards).
    /// </summary>
    public bool UsesFusedLoss => Config.FusedLoss && Config.ImportanceSamplingLevel == ImportanceSamplingLevel.Token
        && !Config.RoutingReplay
        && !(Config.NumIterations > 1 && RoutingReplay.MoeModel(_policy) != null)
        && _policy.Parameters().FirstOrDefault() is { } p && Functional.HasFusedGrpoTokenLoss(p.Device);

    public GenerationOptions SamplingOptions => new()
    {
        MaxNewTokens = Config.MaxCompletionLength,
        Temperature = Config.Temperature,
        TopP = Config.TopP,
        TopK = Config.TopK,
        EosTokenIds = [_tokenizer.EosId],
    };

    public long[] EncodePrompt(string question) => _tokenizer.EncodePrompt(_template.Format(question));

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
        _rolloutBytes = _controlBytes = 0;
        // This rank's sampling (all rounds); summed over the ranks below.
        long generated = 0, promptTokens = 0;
        IReadOnlyList<DrawnGroup> SampleRound(int round)
        {
            // Round 0 draws this step's prompts as plain GRPO does; later rounds (dynamic sampling) draw fresh ones.
            // Every rank draws them all and samples its share: prompt i on rank i mod size.
            ulong seed = PromptSeed(Config, StepIndex) + (ulong)round * 0x9E3779B97F4A7C15UL;
            var drawn = DrawProblems(seed).Select((p, i) => new DrawnGroup(i, p, EncodePrompt(p.Prompt))).ToArray();
            var mine = drawn.Where(d => d.Index % Size == Rank).ToArray();
            var verdicts = new long[drawn.Length];
            if (mine.Length > 0)
            {
                var repeated = mine.SelectMany(d => Enumerable.Repeat(d.Prompt, G)).ToArray();
                var generators = mine.SelectMany(d => Enumerable.Range(0, G)
                    .Select(j => new Generator(RolloutSeed(round, d.Index, j)))).ToArray();
                var all = _policy.Generate(repeated, SamplingOptions, generators);
                var total = _rewards.Score(all.Select((s, i) => Input(mine[i / G].Problem, s)).ToArray()).Total;
                generated += all.Sum(s => (long)s.Tokens.Length);
                promptTokens += mine.Sum(d => (long)d.Prompt.Length) * G;
                for (int k = 0; k < mine.Length; k++)
                {
                    var d = mine[k];
                    d.Rollout = new RolloutGroup(d.Problem, d.Prompt, all.Skip(k * G).Take(G).ToArray(),
                        total[(k * G)..((k + 1) * G)]);
                    verdicts[d.Index] = DynamicSampling.HasZeroStd(d.Rollout.Rewards) ? 1 : 0;
                }
            }
            // Each group's verdict comes from the one rank that scored it; summed, every rank holds all of them,
            // so every rank keeps the same groups and asks for the same further rounds.
            if (Size > 1)
            {
                using var shared = Tensor.FromArray(verdicts, [verdicts.Length], Device.Cpu);
                _group!.AllReduce(shared);
                verdicts = shared.ToInt64Array();
                _controlBytes += 8L * verdicts.Length;
            }
            foreach (var d in drawn) d.ZeroStd = verdicts[d.Index] != 0;
            return drawn;
        }
        var sampling = DynamicSampling.Fill(Config.PromptsPerStep, Config.DynamicSamplingMaxRounds,
            Config.DynamicSampling, SampleRound, d => d.ZeroStd);
        GatherRollouts(sampling.Groups);
        if (Size > 1)
        {
            generated = _group!.SumCount(generated);
            promptTokens = _group!.SumCount(promptTokens);
            _controlBytes += 16;
        }
        var groups = sampling.Groups.Select(d => d.Rollout!).ToArray();
        var problems = groups.Select(g => g.Problem).ToArray();
        var samples = groups.SelectMany(g => g.Samples).ToArray();
        LastRollouts = samples;
        // The whole batch scored again for the per-reward statistics (rewards are deterministic: same totals), and
        // its advantages computed on every rank (batch-level scalings see the whole batch).
        var inputs = samples.Select((s, i) => Input(problems[i / G], s)).ToArray();
        var scores = _rewards.Score(inputs);
        var adv = AdvantageEstimators.Compute(scores.Total, G, Config.AdvantageEstimator, Config.ScaleRewards);
        // The update: kept group k on rank k mod size (all of them in one process).
        var local = Enumerable.Range(0, groups.Length).Where(k => k % Size == Rank).ToArray();
        var batch = local.Length == 0 ? null
            : new RolloutBatch(local.Select(k => groups[k].Prompt).ToArray(),
                local.SelectMany(k => groups[k].Samples).ToArray(), G);
        var localAdv = local.SelectMany(k => adv.Values[(k * G)..((k + 1) * G)]).ToArray();
        bool maskTruncated = Config.MaskTruncatedCompletions;
        long TokensOf(IEnumerable<SampledSequence> s) =>
            s.Where(x => !(maskTruncated && x.Truncated)).Sum(x => (long)x.Tokens.Length);
        long globalTokens = TokensOf(samples), localTokens = batch == null ? 0 : TokensOf(batch.Samples);
        // This rank's share of the loss's normaliser, so that the ranks' losses (and gradients) add up to the whole
        // batch's: dapo divides by the batch's tokens directly (num_items_in_batch); bnpo by its tokens, grpo and
        // dr_grpo by its completions.
        int localCount = batch?.Count ?? 0, globalCount = samples.Length;
        float share = Size == 1 ? 1f : Config.LossType switch
        {
            LossType.Dapo => 1f,
            LossType.Bnpo => (float)(Math.Max(1.0, localTokens) / Math.Max(1.0, globalTokens)),
            _ => (float)((double)localCount / globalCount),
        };

        var options = new GrpoLossOptions
        {
            LossType = Config.LossType,
            Beta = Config.Beta,
            EpsilonLow = Config.EpsilonLow,
            EpsilonHigh = Config.EpsilonHigh,
            MaxCompletionLength = Config.MaxCompletionLength,
            ImportanceSamplingLevel = Config.ImportanceSamplingLevel,
            // dapo normalises by the active tokens of the whole generation batch (every rank's).
            NumItemsInBatch = globalTokens,
        };
        double loss = 0, kl = 0, low = 0, high = 0, region = 0, gradNorm = 0;
        float entropy = float.NaN;
        var shift = new Dictionary<string, double>();
        var moe = RoutingReplay.MoeModel(_policy);
        using (var outer = new TensorScope())
        {
            // Detached when this block ends, however it ends: sampling and evaluation route freely.
            using var detach = RoutingReplay.DetachOnDispose(moe);
            bool fused = UsesFusedLoss;
            int topK = moe?.Config.NumExpertsPerTok ?? 0;
            Tensor? mask = null, advT = null, old = null, reference = null;
            float[] maskArr = [];
            float[]? oldHost = null, refHost = null;
            RoutingTape? tape = null;
            if (batch != null)
            {
                mask = batch.MaskTensor(maskTruncated);
                maskArr = mask.ToArray();
                advT = Tensor.FromArray(localAdv, localAdv.Length);
                // Routing replay: the recording pass is the old-policy pass (run for it when μ = 1 too).
                // (The fused loss lays its forwards out differently, so it gets no tape; replay turns it off.)
                bool record = moe != null && !fused && (Config.RoutingReplay || Config.NumIterations > 1);
                tape = record ? new RoutingTape() : null;
                moe?.AttachRoutingTape(tape);
                using (Tensor.NoGrad())
                {
                    if (Config.NumIterations > 1 || tape != null)
                    {
                        var recorded = batch.LogProbs(_policy, Config.Temperature);
                        if (Config.NumIterations > 1) old = recorded;
                    }
                    if (tape != null)
                        tape.Mode = Config.RoutingReplay ? RoutingTapeMode.Replay : RoutingTapeMode.Observe;
                    if (Config.Beta != 0)
                    {
                        var refMoe = Config.RoutingReplay ? RoutingReplay.MoeModel(_reference) : null;
                        tape?.Rewind();
                        refMoe?.AttachRoutingTape(tape);
                        try { reference = batch.LogProbs(_reference!, Config.Temperature); }
                        finally { refMoe?.AttachRoutingTape(null); }
                    }
                }
                // The fused kernel takes the old and reference log-probs as plain per-token data: one download each.
                oldHost = fused ? old?.ToArray() : null;
                refHost = fused ? reference?.ToArray() : null;
            }
            for (int it = 0; it < Config.NumIterations; it++)
            {
                // This rank's part of the iteration; with no kept group here (fewer than ranks) it adds nothing
                // but still joins the gradient all-reduce.
                var part = new IterationMetrics();
                if (batch != null)
                {
                    using var scope = new TensorScope();
                    tape?.Rewind();
                    var ent = it == 0 ? new float[batch.Count * batch.MaxCompletion] : null;
                    using var result = fused
                        ? batch.FusedLoss(_policy, Config.Temperature, oldHost, refHost, localAdv, maskArr, options,
                            ent)
                        : GrpoLoss.Compute(batch.LogProbs(_policy, Config.Temperature, ent), old, reference, advT!,
                            mask!, options);
                    if (ent != null) part.Entropy = GrpoLoss.MaskedMean(ent, maskArr);
                    if (tape != null)
                        foreach (var (name, value) in RoutingReplay.ShiftMetrics(tape, topK, batch))
                            part.Shift[name] = value;
                    var scaled = share == 1f ? result.Loss : result.Loss * share;
                    scaled.Backward();
                    part.Loss = scaled.Item();
                    part.Kl = result.Kl;
                    part.Low = result.ClipRatioLow;
                    part.High = result.ClipRatioHigh;
                    part.Region = result.ClipRatioRegion;
                }
                _gradients?.AllReduceGradients();
                float norm = GradClip.ClipGradNorm(_policy.Parameters(), Config.MaxGradNorm);
                _optimizer.LearningRate = learningRate ?? _schedule.LearningRate(_optimizerSteps);
                // A non-finite gradient would poison the weights: skip that update, keep the log.
                if (float.IsFinite(norm)) _optimizer.Step();
                _optimizer.ZeroGrad();
                _optimizerSteps++;
                var whole = ReduceMetrics(part, batch, localTokens, moe);
                loss += whole.Loss / Config.NumIterations;
                kl += whole.Kl / Config.NumIterations;
                low += whole.Low / Config.NumIterations;
                high += whole.High / Config.NumIterations;
                region += whole.Region / Config.NumIterations;
                gradNorm += norm / Config.NumIterations;
                if (it == 0) entropy = (float)whole.Entropy;
                foreach (var (name, value) in whole.Shift)
                    shift[name] = shift.GetValueOrDefault(name) + value / Config.NumIterations;
            }
        }

        LastStepTraffic = new GrpoTraffic(GradientBytesPerStep * Config.NumIterations, _rolloutBytes, _controlBytes);
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
        // Rank 0 alone evaluates (it alone logs).
        if (Config.EvalEvery > 0 && StepIndex % Config.EvalEvery == 0 && Rank == 0)
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

    /// <summary>
    /// A prompt of a sampling round as every rank knows it (its index in the round's whole batch, the problem, its
    /// tokens); its rollout is held by the rank that sampled it until <see cref="GatherRollouts"/>.
    /// </summary>
    private sealed class DrawnGroup(int index, Problem problem, long[] prompt)
    {
        public int Index { get; } = index;
        public Problem Problem { get; } = problem;
        public long[] Prompt { get; } = prompt;
        public RolloutGroup? Rollout { get; set; }
        /// <summary>Its rewards all equal (dynamic sampling's verdict), known to every rank.</summary>
        public bool ZeroStd { get; set; }
    }

    /// <summary>One optimizer iteration's loss and metrics over this rank's groups (or, reduced, the batch).</summary>
    private sealed class IterationMetrics
    {
        public double Loss, Kl = double.NaN, Low, High, Region, Entropy = double.NaN;
        public Dictionary<string, double> Shift { get; } = [];
    }

    /// <summary>
    /// Every rank's completions of the kept groups on every rank, so that each can score the whole batch, compute
    /// its advantages and take its share of the update. Rank r sends, for its kept groups in batch order, each
    /// completion as [length, finish reason, reward bits, tokens…]; two all-gathers (sizes, then the padded
    /// streams).
    /// </summary>
    private void GatherRollouts(IReadOnlyList<DrawnGroup> kept)
    {
        if (Size == 1) return;
        int G = Config.NumGenerations;
        var stream = new List<long>();
        foreach (var d in kept.Where(d => d.Index % Size == Rank))
            for (int j = 0; j < G; j++)
            {
                var s = d.Rollout!.Samples[j];
                stream.Add(s.Tokens.Length);
                stream.Add((long)s.FinishReason);
                stream.Add(BitConverter.SingleToInt32Bits(d.Rollout.Rewards[j]));
                stream.AddRange(s.Tokens);
            }
        long[] sizes;
        using (var mine = Tensor.FromArray([(long)stream.Count], [1], Device.Cpu))
        using (var all = Tensor.Zeros([Size], DType.Int64, Device.Cpu))
        {
            _group!.AllGather(mine, all);
            sizes = all.ToInt64Array();
        }
        _controlBytes += 8;
        int width = checked((int)sizes.Max());
        if (width == 0) return;
        stream.AddRange(Enumerable.Repeat(0L, width - stream.Count));
        _rolloutBytes += 8L * width;
        long[] gathered;
        using (var mine = Tensor.FromArray(stream.ToArray(), [width], Device.Cpu))
        using (var all = Tensor.Zeros([Size * width], DType.Int64, Device.Cpu))
        {
            _group!.AllGather(mine, all);
            gathered = all.ToInt64Array();
        }
        var cursor = Enumerable.Range(0, Size).Select(r => r * width).ToArray();
        foreach (var d in kept)
        {
            int owner = d.Index % Size;
            var samples = new SampledSequence[G];
            var rewards = new float[G];
            for (int j = 0; j < G; j++)
            {
                int at = cursor[owner], length = checked((int)gathered[at]);
                var tokens = gathered.AsSpan(at + 3, length).ToArray();
                samples[j] = new SampledSequence(tokens, (FinishReason)gathered[at + 1]);
                rewards[j] = BitConverter.Int32BitsToSingle((int)gathered[at + 2]);
                cursor[owner] = at + 3 + length;
            }
            // The owner keeps what it sampled; the others take the gathered copy (equal to it).
            d.Rollout ??= new RolloutGroup(d.Problem, d.Prompt, samples, rewards);
        }
    }

    /// <summary>
    /// The batch's loss and metrics from every rank's part: the loss is the sum of the (already shared) parts; KL,
    /// entropy and the clip ratios are token means, so each part is weighted by its tokens (clip ratios at sequence
    /// level by its completions); a router-shift share by its completion tokens. In one process: the part itself.
    /// </summary>
    private IterationMetrics ReduceMetrics(IterationMetrics part, RolloutBatch? batch, long tokens,
        DeepseekV3ForCausalLM? moe)
    {
        if (Size == 1) return part;
        int layers = moe?.MoeLayers.Count() ?? 0;
        bool perSequence = Config.ImportanceSamplingLevel == ImportanceSamplingLevel.Sequence;
        double clipWeight = perSequence ? batch?.Count ?? 0 : tokens;
        double shiftWeight = batch?.Samples.Sum(x => (double)x.Tokens.Length) ?? 0;
        double Weighted(double v, double w) => w == 0 || double.IsNaN(v) ? 0 : v * w;
        var v = new float[8 + 2 * layers];
        v[0] = (float)part.Loss;
        v[1] = (float)Weighted(part.Kl, tokens);
        v[2] = (float)Weighted(part.Entropy, tokens);
        v[3] = tokens;
        v[4] = (float)Weighted(part.Low, clipWeight);
        v[5] = (float)Weighted(part.High, clipWeight);
        v[6] = (float)Weighted(part.Region, clipWeight);
        v[7] = (float)clipWeight;
        for (int l = 0; l < layers; l++)
            if (part.Shift.TryGetValue($"router_shift/moe_layer_{l}", out var s))
            {
                v[8 + 2 * l] = (float)(s * shiftWeight);
                v[9 + 2 * l] = (float)shiftWeight;
            }
        using (var t = Tensor.FromArray(v, v.Length))
        {
            _group!.AllReduce(t);
            v = t.ToArray();
        }
        _controlBytes += 4L * v.Length;
        double allTokens = Math.Max(1.0, v[3]), allClip = Math.Max(1.0, v[7]);
        var whole = new IterationMetrics
        {
            Loss = v[0],
            Kl = Config.Beta != 0 ? v[1] / allTokens : double.NaN,
            Entropy = double.IsNaN(part.Entropy) && batch != null ? double.NaN : v[2] / allTokens,
            Low = v[4] / allClip,
            High = v[5] / allClip,
            Region = v[6] / allClip,
        };
        var shares = new List<double>();
        for (int l = 0; l < layers; l++)
            if (v[9 + 2 * l] > 0)
            {
                double share = v[8 + 2 * l] / v[9 + 2 * l];
                whole.Shift[$"router_shift/moe_layer_{l}"] = share;
                shares.Add(share);
            }
        if (shares.Count > 0) whole.Shift["router_shift/mean"] = shares.Average();
        return whole;
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
        var prompts = problems.Select(p => tokenizer.EncodePrompt(template.Format(p.Prompt))).ToArray();
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
