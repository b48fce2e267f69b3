namespace NativeReasoner.Model;

/// <summary>
/// The <c>rope_scaling</c> block of a DeepSeek-V3 config.json. Only YaRN is supported (the only scaling
/// DeepSeek-V3/R1 checkpoints use); a config without the block uses plain RoPE.
/// Field names and defaults follow Hugging Face (<c>_compute_yarn_parameters</c>):
/// beta_fast 32, beta_slow 1, mscale 1, mscale_all_dim 0 (0 = no softmax rescaling).
/// </summary>
public sealed record RopeScaling
{
    /// <summary>"yarn" (HF writes it both as <c>type</c> and <c>rope_type</c>).</summary>
    public string Type { get; init; } = "yarn";

    /// <summary>Context extension factor s (DeepSeek-V3: 40).</summary>
    public double Factor { get; init; } = 1.0;

    /// <summary>The pre-extension training length L0 used for the correction range (DeepSeek-V3: 4096).</summary>
    public int OriginalMaxPositionEmbeddings { get; init; } = 4096;

    public double BetaFast { get; init; } = 32.0;
    public double BetaSlow { get; init; } = 1.0;

    /// <summary>
    /// HF's numerator of the cos/sin "attention factor" mscale(s, mscale)/mscale(s, mscale_all_dim). The
    /// official code (which produced our golden data) never scales cos/sin; DeepSeek configs set
    /// mscale = mscale_all_dim, where both agree (factor 1). Kept for round-tripping config.json.
    /// </summary>
    public double Mscale { get; init; } = 1.0;

    /// <summary>The mscale that enters the softmax scale (squared). 0 = absent.</summary>
    public double MscaleAllDim { get; init; }
}
