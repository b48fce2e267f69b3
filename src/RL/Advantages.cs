namespace NativeReasoner.RL;

/// <summary>Group-relative advantages and the reward statistics logged with them.</summary>
/// <param name="Values">A_i per completion [N]; 0 where the reward was skipped (NaN) or undefined.</param>
/// <param name="GroupMean">Mean reward of each completion's group, repeated per completion [N].</param>
/// <param name="GroupStd">Std (Bessel) of each completion's group, repeated per completion [N].</param>
/// <param name="FracRewardZeroStd">Share of groups whose rewards are all equal (they carry no policy gradient).</param>
public sealed record AdvantageResult(float[] Values, float[] GroupMean, float[] GroupStd, float FracRewardZeroStd);

/// <summary>
/// GRPO advantages as TRL computes them (<c>_generate_and_score_completions</c>): rewards come as
/// N = groups·G values with the G completions of one prompt contiguous; a skipped reward is NaN.
/// <code>
/// μ_g = nanmean(R_g)                 σ_g = nanstd(R_g)   (Bessel: divide by n − 1)
/// A_i = (R_i − μ_g) / (σ + 1e-4)     σ = σ_g ("group") or nanstd over the batch ("batch")
/// A_i =  R_i − μ_g                    ("none", Dr. GRPO)
/// A = nan_to_num(A, 0)
/// </code>
/// Computed in double and rounded once (TRL works in float32; the difference is far below 1e-6).
/// </summary>
public static class Advantages
{
    public const double StdEpsilon = 1e-4;

    public static AdvantageResult Compute(ReadOnlySpan<float> rewards, int numGenerations, ScaleRewards scale)
    {
        int n = rewards.Length;
        if (numGenerations < 1) throw new ArgumentOutOfRangeException(nameof(numGenerations), $"num_generations must be ≥ 1, got {numGenerations}");
        if (n % numGenerations != 0)
            throw new ArgumentException($"{n} rewards do not split into groups of num_generations = {numGenerations}");
        int groups = n / numGenerations;
        var values = new float[n];
        var gMean = new float[n];
        var gStd = new float[n];
        var r = rewards.ToArray();
        double batchStd = NanStd(r);
        int zeroStd = 0;
        for (int g = 0; g < groups; g++)
        {
            var slice = r.AsSpan(g * numGenerations, numGenerations);
            double mean = NanMean(slice), std = NanStd(slice);
            // torch.isclose(std, 0): |std| ≤ 1e-8 (atol); NaN (fewer than two rewards) is not close to 0.
            if (Math.Abs(std) <= 1e-8) zeroStd++;
            double denom = scale switch
            {
                ScaleRewards.Group => std + StdEpsilon,
                ScaleRewards.Batch => batchStd + StdEpsilon,
                _ => 1.0,
            };
            for (int j = 0; j < numGenerations; j++)
            {
                int i = g * numGenerations + j;
                double a = (r[i] - mean) / denom;
                values[i] = double.IsFinite(a) ? (float)a : 0f;
                gMean[i] = (float)mean;
                gStd[i] = (float)std;
            }
        }
        return new AdvantageResult(values, gMean, gStd, groups == 0 ? 0f : (float)zeroStd / groups);
    }

    /// <summary>Mean of the non-NaN values; NaN when there are none.</summary>
    public static double NanMean(ReadOnlySpan<float> x)
    {
        double s = 0;
        int c = 0;
        foreach (var v in x)
            if (!float.IsNaN(v)) { s += v; c++; }
        return c == 0 ? double.NaN : s / c;
    }

    /// <summary>Std with Bessel's correction of the non-NaN values; NaN when fewer than two.</summary>
    public static double NanStd(ReadOnlySpan<float> x)
    {
        double m = NanMean(x);
        double s = 0;
        int c = 0;
        foreach (var v in x)
            if (!float.IsNaN(v)) { s += (v - m) * (v - m); c++; }
        return c < 2 ? double.NaN : Math.Sqrt(s / (c - 1));
    }
}
