using System.Globalization;

namespace NativeReasoner.RL;

/// <summary>
/// The estimators of sampled evaluation: the unbiased pass@k of Chen et al. (arXiv 2107.03374, §2.1) and the
/// majority vote over parsed answers behind maj@k / cons@k (DeepSeek-R1, arXiv 2501.12948, §3.1).
/// </summary>
public static class PassAtK
{
    /// <summary>
    /// Unbiased pass@k of one problem from <paramref name="n"/> samples of which <paramref name="c"/> are correct:
    /// 1 − C(n−c, k) / C(n, k), the chance that k of the n samples drawn without replacement include a correct one.
    /// The ratio of binomials is the product Π_{i=n−c+1..n} (1 − k/i), which never forms a large number.
    /// </summary>
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1) throw new ArgumentException($"pass@k needs n ≥ 1 samples, got n = {n}");
        if (c < 0 || c > n)
            throw new ArgumentException($"pass@k needs 0 ≤ c ≤ n correct samples, got c = {c} of n = {n}");
        if (k < 1 || k > n)
            throw new ArgumentException($"pass@k needs 1 ≤ k ≤ n, got k = {k} with n = {n} samples");
        // Fewer wrong samples than k: every draw of k holds a correct one.
        if (n - c < k) return 1.0;
        double allWrong = 1.0;
        for (int i = n - c + 1; i <= n; i++) allWrong *= 1.0 - (double)k / i;
        return 1.0 - allWrong;
    }

    /// <summary>
    /// The key two answers share when they say the same thing: a number in canonical form (so <c>4</c>, <c>4.0</c> and
    /// <c>04</c> vote together), otherwise the trimmed text; null for a completion without an answer.
    /// </summary>
    public static string? AnswerKey(string? answer)
    {
        if (answer == null) return null;
        var trimmed = answer.Trim();
        if (trimmed.Length == 0) return null;
        return AnswerParsing.TryParseNumber(trimmed, out var v)
            ? v.ToString("R", CultureInfo.InvariantCulture)
            : trimmed;
    }

    /// <summary>
    /// The index of the sample whose answer wins the majority vote among the first <paramref name="k"/> samples
    /// (answers compared by <see cref="AnswerKey"/>; samples without an answer do not vote), or −1 when none
    /// answered. A tie goes to the answer given first, so the vote is deterministic.
    /// </summary>
    public static int MajorityIndex(IReadOnlyList<string?> answers, int k)
    {
        if (k < 1 || k > answers.Count)
            throw new ArgumentException($"maj@k needs 1 ≤ k ≤ {answers.Count} samples, got k = {k}");
        var votes = new Dictionary<string, (int Count, int First)>();
        for (int i = 0; i < k; i++)
        {
            if (AnswerKey(answers[i]) is not { } key) continue;
            votes[key] = votes.TryGetValue(key, out var v) ? (v.Count + 1, v.First) : (1, i);
        }
        int best = -1, bestCount = 0;
        foreach (var (count, first) in votes.Values)
            if (count > bestCount || (count == bestCount && first < best)) (best, bestCount) = (first, count);
        return best;
    }
}
