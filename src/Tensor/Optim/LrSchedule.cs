namespace NativeReasoner.Optim;

/// <summary>
/// A learning-rate schedule: the rate to use for optimizer step <c>step</c> (0-based: the first
/// <see cref="Optimizer.Step"/> is step 0). Typical use: <c>opt.LearningRate = schedule.LearningRate(step)</c>
/// before each step.
/// </summary>
public interface ILrSchedule
{
    float LearningRate(int step);
}

/// <summary>lr(step) = baseLr for every step.</summary>
public sealed class ConstantLr(float baseLr) : ILrSchedule
{
    public float BaseLr { get; } = baseLr >= 0f ? baseLr : throw new ArgumentOutOfRangeException(nameof(baseLr));

    public float LearningRate(int step) => BaseLr;
}

/// <summary>
/// Linear warmup, then constant:
/// lr(step) = baseLr · (step + 1) / warmupSteps for step &lt; warmupSteps, else baseLr.
/// warmupSteps = 0 means no warmup. Steps below 0 are treated as 0.
/// </summary>
public sealed class LinearWarmup : ILrSchedule
{
    public float BaseLr { get; }
    public int WarmupSteps { get; }

    public LinearWarmup(float baseLr, int warmupSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(baseLr);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        BaseLr = baseLr;
        WarmupSteps = warmupSteps;
    }

    public float LearningRate(int step) => (float)LrMath.Warmup(BaseLr, WarmupSteps, Math.Max(step, 0));
}

/// <summary>
/// Linear warmup followed by cosine decay to a floor of minLrRatio · baseLr. With step clamped to ≥ 0:
/// <code>
/// step &lt; warmupSteps:  lr = baseLr · (step + 1) / warmupSteps
/// otherwise:           progress = clamp((step − warmupSteps) / max(1, totalSteps − warmupSteps), 0, 1)
///                      lr = baseLr · (minLrRatio + (1 − minLrRatio) · 0.5 · (1 + cos(π · progress)))
/// </code>
/// So lr = baseLr at step = warmupSteps, minLrRatio · baseLr from step = totalSteps on. Computed in double,
/// returned as float.
/// </summary>
public sealed class CosineDecay : ILrSchedule
{
    public float BaseLr { get; }
    public int WarmupSteps { get; }
    public int TotalSteps { get; }
    public float MinLrRatio { get; }

    public CosineDecay(float baseLr, int warmupSteps, int totalSteps, float minLrRatio = 0f)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(baseLr);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfNegative(totalSteps);
        if (float.IsNaN(minLrRatio) || minLrRatio < 0f || minLrRatio > 1f)
            throw new ArgumentOutOfRangeException(nameof(minLrRatio), $"minLrRatio must be in [0, 1], got {minLrRatio}");
        BaseLr = baseLr;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinLrRatio = minLrRatio;
    }

    public float LearningRate(int step)
    {
        step = Math.Max(step, 0);
        if (step < WarmupSteps) return (float)LrMath.Warmup(BaseLr, WarmupSteps, step);
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        progress = Math.Clamp(progress, 0.0, 1.0);
        double cosine = 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return (float)(BaseLr * (MinLrRatio + (1.0 - MinLrRatio) * cosine));
    }
}

internal static class LrMath
{
    public static double Warmup(double baseLr, int warmupSteps, int step) =>
        step < warmupSteps ? baseLr * (step + 1) / warmupSteps : baseLr;
}
