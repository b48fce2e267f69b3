using System.Globalization;
using System.Text.Json.Nodes;

namespace NativeReasoner.RL;

/// <summary>
/// Everything a GRPO run is configured by, under one flat set of snake_case names (TRL's where TRL has
/// one), settable from a JSON config file and from the command line (<c>--loss-type dapo</c> for
/// <c>loss_type</c>). Unknown names and bad values are errors that name the setting.
/// </summary>
public sealed record GrpoSettings
{
    public GrpoConfig Trainer { get; init; } = new();
    public string Task { get; init; } = "arithmetic";
    public int Steps { get; init; } = 50;
    public float AccuracyWeight { get; init; } = 1f;
    public float FormatWeight { get; init; } = 0.5f;
    public float CharsetWeight { get; init; }
    /// <summary>DAPO soft overlong punishment cache L_c in tokens (0 = off); L_max is max_completion_length.</summary>
    public int OverlongCache { get; init; }
    public int EvalProblems { get; init; } = 50;

    private delegate GrpoSettings Setter(GrpoSettings s, string value);

    private static readonly (string Name, string Help, Setter Set)[] Table =
    [
        ("task", "task name: " + string.Join(", ", TaskRegistry.Names), (s, v) => { TaskRegistry.Create(v); return s with { Task = v }; }),
        ("steps", "generation batches to train", (s, v) => s with { Steps = Int(v), Trainer = s.Trainer with { TotalSteps = Int(v) } }),
        ("num_generations", "G: completions per prompt", (s, v) => s with { Trainer = s.Trainer with { NumGenerations = Int(v) } }),
        ("prompts_per_step", "prompts per generation batch", (s, v) => s with { Trainer = s.Trainer with { PromptsPerStep = Int(v) } }),
        ("num_iterations", "μ: optimizer steps per generation batch", (s, v) => s with { Trainer = s.Trainer with { NumIterations = Int(v) } }),
        ("max_completion_length", "tokens per completion at most", (s, v) => s with { Trainer = s.Trainer with { MaxCompletionLength = Int(v) } }),
        ("temperature", "sampling temperature (log-probs use it too)", (s, v) => s with { Trainer = s.Trainer with { Temperature = Float(v) } }),
        ("top_p", "nucleus sampling p", (s, v) => s with { Trainer = s.Trainer with { TopP = Float(v) } }),
        ("top_k", "top-k sampling (0 = off)", (s, v) => s with { Trainer = s.Trainer with { TopK = Int(v) } }),
        ("loss_type", "grpo | bnpo | dr_grpo | dapo", (s, v) => s with { Trainer = s.Trainer with { LossType = GrpoNames.ParseLossType(v) } }),
        ("scale_rewards", "group | batch | none", (s, v) => s with { Trainer = s.Trainer with { ScaleRewards = GrpoNames.ParseScaleRewards(v) } }),
        ("beta", "KL coefficient (k3); > 0 loads a frozen reference", (s, v) => s with { Trainer = s.Trainer with { Beta = Float(v) } }),
        ("epsilon", "lower clip range ε_low", (s, v) => s with { Trainer = s.Trainer with { EpsilonLow = Float(v) } }),
        ("epsilon_high", "upper clip range ε_high (default ε_low)", (s, v) => s with { Trainer = s.Trainer with { EpsilonHigh = Float(v) } }),
        ("importance_sampling_level", "token | sequence (GSPO: one clipped ratio per completion)",
            (s, v) => s with
            {
                Trainer = s.Trainer with { ImportanceSamplingLevel = GrpoNames.ParseImportanceSamplingLevel(v) },
            }),
        ("advantage_estimator", "grpo | rloo | reinforce_pp (REINFORCE++-baseline)",
            (s, v) => s with { Trainer = s.Trainer with { AdvantageEstimator = AdvantageEstimators.Parse(v) } }),
        ("dynamic_sampling", "true: DAPO dynamic sampling, drop groups whose rewards all equal and sample more",
            (s, v) => s with { Trainer = s.Trainer with { DynamicSampling = Bool(v) } }),
        ("dynamic_sampling_max_rounds", "cap on sampling rounds per step with dynamic sampling (first included)",
            (s, v) => s with { Trainer = s.Trainer with { DynamicSamplingMaxRounds = Int(v) } }),
        ("routing_replay", "true: MoE policies replay the rollout's experts in the old, reference and update passes",
            (s, v) => s with { Trainer = s.Trainer with { RoutingReplay = Bool(v) } }),
        ("mask_truncated_completions", "true: truncated completions add no loss", (s, v) => s with { Trainer = s.Trainer with { MaskTruncatedCompletions = Bool(v) } }),
        ("learning_rate", "AdamW peak learning rate", (s, v) => s with { Trainer = s.Trainer with { LearningRate = Float(v) } }),
        ("weight_decay", "AdamW weight decay", (s, v) => s with { Trainer = s.Trainer with { WeightDecay = Float(v) } }),
        ("max_grad_norm", "gradient clipping norm", (s, v) => s with { Trainer = s.Trainer with { MaxGradNorm = Float(v) } }),
        ("warmup_steps", "linear warmup steps (then cosine)", (s, v) => s with { Trainer = s.Trainer with { WarmupSteps = Int(v) } }),
        ("eval_steps", "held-out evaluation every N steps (0 = off)", (s, v) => s with { Trainer = s.Trainer with { EvalEvery = Int(v) } }),
        ("eval_problems", "held-out problems per evaluation", (s, v) => s with { EvalProblems = Int(v), Trainer = s.Trainer with { EvalProblems = Int(v) } }),
        ("seed", "random seed", (s, v) => s with { Trainer = s.Trainer with { Seed = ulong.Parse(v, CultureInfo.InvariantCulture) } }),
        ("accuracy_weight", "weight of the accuracy reward", (s, v) => s with { AccuracyWeight = Float(v) }),
        ("format_weight", "weight of the format reward (0 = off)", (s, v) => s with { FormatWeight = Float(v) }),
        ("charset_weight", "weight of the charset-consistency reward (0 = off)", (s, v) => s with { CharsetWeight = Float(v) }),
        ("overlong_cache", "DAPO soft overlong punishment cache in tokens (0 = off)", (s, v) => s with { OverlongCache = Int(v) }),
    ];

    public static IEnumerable<(string Name, string Help)> Names => Table.Select(t => (t.Name, t.Help));

    /// <summary>Sets one setting from its text value; errors name the setting and list the known ones.</summary>
    public GrpoSettings With(string name, string value)
    {
        var entry = Table.FirstOrDefault(t => t.Name == name.Replace('-', '_'));
        if (entry.Set == null) throw new ArgumentException($"unknown setting '{name}'; known: {string.Join(", ", Table.Select(t => t.Name))}");
        try { return entry.Set(this, value.Trim()); }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new ArgumentException($"setting {entry.Name} = '{value}': {e.Message}", e);
        }
    }

    /// <summary>Applies a JSON object of settings ({"loss_type": "dapo", "beta": 0.04, …}).</summary>
    public GrpoSettings WithJson(string json, string source) => ConfigJson.Apply(this, json, source, (s, k, v) => s.With(k, v));

    /// <summary>The effective value of every setting, for summary.json.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var (name, _) in Names) o[name] = Describe(this, name);
        return o;
    }

    // The effective value of a setting, for summary.json.
    private static JsonNode? Describe(GrpoSettings s, string name) => name switch
    {
        "task" => s.Task,
        "steps" => s.Steps,
        "num_generations" => s.Trainer.NumGenerations,
        "prompts_per_step" => s.Trainer.PromptsPerStep,
        "num_iterations" => s.Trainer.NumIterations,
        "max_completion_length" => s.Trainer.MaxCompletionLength,
        "temperature" => s.Trainer.Temperature,
        "top_p" => s.Trainer.TopP,
        "top_k" => s.Trainer.TopK,
        "loss_type" => GrpoNames.Name(s.Trainer.LossType),
        "scale_rewards" => GrpoNames.Name(s.Trainer.ScaleRewards),
        "beta" => s.Trainer.Beta,
        "epsilon" => s.Trainer.EpsilonLow,
        "epsilon_high" => s.Trainer.EpsilonHigh ?? s.Trainer.EpsilonLow,
        "mask_truncated_completions" => s.Trainer.MaskTruncatedCompletions,
        "importance_sampling_level" => GrpoNames.Name(s.Trainer.ImportanceSamplingLevel),
        "dynamic_sampling" => s.Trainer.DynamicSampling,
        "dynamic_sampling_max_rounds" => s.Trainer.DynamicSamplingMaxRounds,
        "routing_replay" => s.Trainer.RoutingReplay,
        "advantage_estimator" => AdvantageEstimators.Name(s.Trainer.AdvantageEstimator),
        "learning_rate" => s.Trainer.LearningRate,
        "weight_decay" => s.Trainer.WeightDecay,
        "max_grad_norm" => s.Trainer.MaxGradNorm,
        "warmup_steps" => s.Trainer.WarmupSteps,
        "eval_steps" => s.Trainer.EvalEvery,
        "eval_problems" => s.EvalProblems,
        "seed" => s.Trainer.Seed,
        "accuracy_weight" => s.AccuracyWeight,
        "format_weight" => s.FormatWeight,
        "charset_weight" => s.CharsetWeight,
        "overlong_cache" => s.OverlongCache,
        _ => null,
    };

    /// <summary>The reward set these settings describe.</summary>
    public RewardSet Rewards(VerifiableTask task, bool thinkPrefilled)
    {
        var set = new RewardSet();
        if (AccuracyWeight != 0) set.Add(new AccuracyReward(task), AccuracyWeight);
        if (FormatWeight != 0) set.Add(new FormatReward(thinkPrefilled), FormatWeight);
        if (CharsetWeight != 0) set.Add(new CharsetReward(thinkPrefilled: thinkPrefilled), CharsetWeight);
        if (OverlongCache > 0) set.Add(new SoftOverlongPunishment(Trainer.MaxCompletionLength, OverlongCache));
        if (set.Items.Count == 0) throw new ArgumentException("every reward weight is 0: nothing to train on");
        return set;
    }

    internal static int Int(string v) => int.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture);
    internal static float Float(string v) => float.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture);
    internal static bool Bool(string v) => v.ToLowerInvariant() switch
    {
        "true" or "1" or "yes" => true,
        "false" or "0" or "no" => false,
        _ => throw new FormatException("expected true or false"),
    };
}

/// <summary>JSON config files: a flat object of settings applied one by one through a setter that names the key in its errors.</summary>
public static class ConfigJson
{
    public static T Apply<T>(T start, string json, string source, Func<T, string, string, T> with)
    {
        JsonObject o;
        try { o = JsonNode.Parse(json) as JsonObject ?? throw new ArgumentException($"{source}: the config must be a JSON object"); }
        catch (System.Text.Json.JsonException e) { throw new ArgumentException($"{source}: malformed JSON: {e.Message}", e); }
        var s = start;
        foreach (var (k, v) in o)
        {
            if (v == null) continue;
            try { s = with(s, k, v is JsonValue jv && jv.TryGetValue<string>(out var str) ? str : v.ToJsonString()); }
            catch (ArgumentException e) { throw new ArgumentException($"{source}: {e.Message}", e); }
        }
        return s;
    }

    /// <summary>Reads <paramref name="path"/> and applies it; a missing file is a clear error.</summary>
    public static T ApplyFile<T>(T start, string path, Func<T, string, string, T> with)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config file '{path}' does not exist", path);
        return Apply(start, File.ReadAllText(path), path, with);
    }
}
