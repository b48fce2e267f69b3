namespace NativeReasoner.RL;

/// <summary>
/// Which baseline and scaling turn rewards into advantages (verl's <c>adv_estimator</c>). Rewards come as
/// N = groups·G values with the G completions of one prompt contiguous; a skipped reward is NaN and gets A = 0.
/// </summary>
public enum AdvantageEstimator
{
    /// <summary>
    /// GRPO (DeepSeekMath, arXiv 2402.03300): A = (R − group mean) / scale, scale from scale_rewards.
    /// </summary>
    Grpo,
    /// <summary>
    /// RLOO (arXiv 2402.14740): A_i = R_i − mean of the other rewards of its group (leave-one-out), then divided
    /// by the scale scale_rewards selects (group std + 1e-4, batch std + 1e-4, or 1).
    /// </summary>
    Rloo,
    /// <summary>
    /// REINFORCE++-baseline (arXiv 2501.03262, its variant for prompts sampled G times): A_i = R_i − group mean,
    /// then normalised over the whole batch, A ← (A − mean_batch A) / (std_batch A + 1e-4), every completion
    /// counted once (std with Bessel's correction). scale_rewards is not used. The paper's token-level KL
    /// folded into the reward is not part of it here: β keeps adding the k3 KL to the loss.
    /// </summary>
    ReinforcePlusPlus,
}

/// <summary>
/// Advantages of the estimators beside GRPO's, with the same reward statistics as <see cref="Advantages.Compute"/>.
/// </summary>
public static class AdvantageEstimators
{
    public static AdvantageEstimator Parse(string s) => s.Trim().ToLowerInvariant() switch
    {
        "grpo" => AdvantageEstimator.Grpo,
        "rloo" => AdvantageEstimator.Rloo,
        "reinforce_pp" or "reinforce++" or "reinforce_plus_plus" or "reinforce_plus_plus_baseline"
            => AdvantageEstimator.ReinforcePlusPlus,
        _ => throw new ArgumentException($"unknown advantage estimator '{s}'; known: grpo, rloo, reinforce_pp"),
    };

    public static string Name(AdvantageEstimator e) => e switch
    {
        AdvantageEstimator.Grpo => "grpo",
        AdvantageEstimator.Rloo => "rloo",
        _ => "reinforce_pp",
    };

    /// <summary>
    /// A per completion [N] under <paramref name="estimator"/>; group mean/std and the zero-std share as GRPO logs
    /// them.
    /// </summary>
    public static AdvantageResult Compute(ReadOnlySpan<float> rewards, int numGenerations, AdvantageEstimator estimator,
        ScaleRewards scale)
    {
        var grpo = Advantages.Compute(rewards, numGenerations, scale);
        if (estimator == AdvantageEstimator.Grpo) return grpo;
        int n = rewards.Length, G = numGenerations;
        var r = rewards.ToArray();
        var values = new float[n];
        if (estimator == AdvantageEstimator.Rloo)
        {
            double batchStd = Advantages.NanStd(r);
            for (int g = 0; g < n / G; g++)
            {
                var slice = r.AsSpan(g * G, G);
                double sum = 0;
                int count = 0;
                foreach (var v in slice)
                    if (!float.IsNaN(v)) { sum += v; count++; }
                double denom = scale switch
                {
                    ScaleRewards.Group => Advantages.NanStd(slice) + Advantages.StdEpsilon,
                    ScaleRewards.Batch => batchStd + Advantages.StdEpsilon,
                    _ => 1.0,
                };
                for (int j = 0; j < G; j++)
                {
                    int i = g * G + j;
                    // The baseline of R_i is the mean of the group's other defined rewards; none (count 1) → NaN → 0.
                    double a = (r[i] - (sum - r[i]) / (count - 1)) / denom;
                    values[i] = double.IsFinite(a) ? (float)a : 0f;
                }
            }
        }
        else
        {
            // Group-centred rewards (NaN stays NaN), scaled by the std over the batch's defined values. Their batch
            // mean is zero in exact arithmetic and is not subtracted: the rounding residue would give a zero-variance
            // group ±1e-17 advantages instead of 0, and the clip metrics count tokens by the advantage's sign.
            var centred = new double[n];
            for (int g = 0; g < n / G; g++)
            {
                double groupMean = Advantages.NanMean(r.AsSpan(g * G, G));
                for (int i = g * G; i < (g + 1) * G; i++) centred[i] = r[i] - groupMean;
            }
            double mean = 0, dev = 0;
            int count = 0;
            foreach (var c in centred)
                if (!double.IsNaN(c)) { mean += c; count++; }
            mean /= count;
            foreach (var c in centred)
                if (!double.IsNaN(c)) dev += (c - mean) * (c - mean);
            double std = Math.Sqrt(dev / (count - 1));
            for (int i = 0; i < n; i++)
            {
                double a = centred[i] / (std + Advantages.StdEpsilon);
                values[i] = double.IsFinite(a) ? (float)a : 0f;
            }
        }
        return grpo with { Values = values };
    }
}
