namespace NativeReasoner.RL;

/// <summary>How per-token losses are aggregated into one scalar (TRL's <c>loss_type</c>).</summary>
public enum LossType
{
    /// <summary>DeepSeekMath: mean over each completion's tokens, then mean over completions.</summary>
    Grpo,
    /// <summary>Sum over all active tokens of the micro-batch / their count.</summary>
    Bnpo,
    /// <summary>Dr. GRPO: sum over active tokens / (B · max_completion_length), a constant.</summary>
    DrGrpo,
    /// <summary>DAPO (TRL's default): sum over active tokens / active tokens of the whole generation batch.</summary>
    Dapo,
}

/// <summary>How rewards are scaled after subtracting the group mean (TRL's <c>scale_rewards</c>).</summary>
public enum ScaleRewards
{
    /// <summary>Divide by the group's std (Bessel) + 1e-4.</summary>
    Group,
    /// <summary>Divide by the std of the whole batch (Bessel) + 1e-4 (Lite PPO).</summary>
    Batch,
    /// <summary>No scaling (Dr. GRPO).</summary>
    None,
}

/// <summary>Where the importance ratio lives (TRL's <c>importance_sampling_level</c>).</summary>
public enum ImportanceSamplingLevel
{
    /// <summary>One ratio per token, exp(logp − old) (GRPO/PPO).</summary>
    Token,
    /// <summary>GSPO (arXiv 2507.18071): exp of the completion's mean log-ratio, clipped per completion.</summary>
    Sequence,
}

/// <summary>Parsing of the TRL spellings used on the command line and in configs.</summary>
public static class GrpoNames
{
    public static LossType ParseLossType(string s) => s.Trim().ToLowerInvariant() switch
    {
        "grpo" => LossType.Grpo,
        "bnpo" => LossType.Bnpo,
        "dr_grpo" or "dr-grpo" or "drgrpo" => LossType.DrGrpo,
        "dapo" => LossType.Dapo,
        _ => throw new ArgumentException($"unknown loss type '{s}'; known: grpo, bnpo, dr_grpo, dapo"),
    };

    public static string Name(LossType t) => t switch
    {
        LossType.Grpo => "grpo",
        LossType.Bnpo => "bnpo",
        LossType.DrGrpo => "dr_grpo",
        _ => "dapo",
    };

    public static ImportanceSamplingLevel ParseImportanceSamplingLevel(string s) => s.Trim().ToLowerInvariant() switch
    {
        "token" => ImportanceSamplingLevel.Token,
        "sequence" => ImportanceSamplingLevel.Sequence,
        _ => throw new ArgumentException($"unknown importance_sampling_level '{s}'; known: token, sequence"),
    };

    public static string Name(ImportanceSamplingLevel l) => l == ImportanceSamplingLevel.Token ? "token" : "sequence";

    public static ScaleRewards ParseScaleRewards(string s) => s.Trim().ToLowerInvariant() switch
    {
        "group" or "true" => ScaleRewards.Group,
        "batch" => ScaleRewards.Batch,
        "none" or "false" => ScaleRewards.None,
        _ => throw new ArgumentException($"unknown scale_rewards '{s}'; known: group, batch, none"),
    };

    public static string Name(ScaleRewards s) => s switch
    {
        ScaleRewards.Group => "group",
        ScaleRewards.Batch => "batch",
        _ => "none",
    };
}

/// <summary>Hyper-parameters of the per-token GRPO loss (TRL names in the comments).</summary>
public sealed record GrpoLossOptions
{
    public LossType LossType { get; init; } = LossType.Dapo;

    /// <summary>KL coefficient β (<c>beta</c>); 0 drops the KL term and needs no reference log-probs.</summary>
    public float Beta { get; init; }

    /// <summary>Lower clip range ε_low (<c>epsilon</c>): the ratio is clamped at 1 − ε_low.</summary>
    public float EpsilonLow { get; init; } = 0.2f;

    /// <summary>Upper clip range ε_high (<c>epsilon_high</c>); null means ε_low (symmetric).</summary>
    public float? EpsilonHigh { get; init; }

    /// <summary>L_max (<c>max_completion_length</c>): the constant normaliser of dr_grpo.</summary>
    public int MaxCompletionLength { get; init; }

    /// <summary>
    /// dapo's normaliser: active tokens of the whole generation batch (<c>num_items_in_batch</c>). Null
    /// means the active tokens of the mask passed in (one micro-batch = the whole batch).
    /// </summary>
    public float? NumItemsInBatch { get; init; }

    /// <summary>grpo, bnpo and dr_grpo divide by the gradient-accumulation steps (dapo's normaliser already counts them).</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Token ratios (GRPO) or one ratio per completion (GSPO, <c>importance_sampling_level</c>).</summary>
    public ImportanceSamplingLevel ImportanceSamplingLevel { get; init; }

    public float EffectiveEpsilonHigh => EpsilonHigh ?? EpsilonLow;
}
