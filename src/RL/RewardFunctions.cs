namespace NativeReasoner.RL;

/// <summary>What a reward function sees of one sampled completion.</summary>
/// <param name="Problem">The task problem the prompt asked.</param>
/// <param name="Completion">The generated text after the prompt (special tokens kept, EOS removed).</param>
/// <param name="CompletionTokens">Number of generated tokens (including EOS when sampled).</param>
/// <param name="Truncated">True when generation hit the length limit before EOS.</param>
public sealed record RewardInput(Problem Problem, string Completion, int CompletionTokens, bool Truncated);

/// <summary>
/// A reward on one completion. Returning null means "skip": the function has no opinion on this sample
/// (TRL's None); skipped values are left out of sums and statistics.
/// </summary>
public interface IRewardFunction
{
    /// <summary>The name its metrics are logged under (<c>rewards/NAME/mean</c>).</summary>
    string Name { get; }

    float? Score(RewardInput input);
}

/// <summary>
/// 1 when the LAST <c>\boxed{…}</c> of the completion solves the problem (task checker: numeric comparison, or
/// Countdown's expression check), 0 when it does not or there is none; skip when the ground truth itself is empty.
/// </summary>
public sealed class AccuracyReward(VerifiableTask task) : IRewardFunction
{
    public string Name => "accuracy";

    public float? Score(RewardInput input)
    {
        if (string.IsNullOrWhiteSpace(input.Problem.Answer)) return null;
        var boxed = AnswerParsing.LastBoxed(input.Completion);
        return boxed != null && task.Check(input.Problem, boxed) ? 1f : 0f;
    }
}

/// <summary>
/// 1 when the completion is <c>&lt;think&gt;reasoning&lt;/think&gt;</c> (exactly one such block, at the start, reasoning
/// not blank) followed by a <c>\boxed{…}</c> answer; else 0. When the prompt template already ends with
/// <c>&lt;think&gt;</c> (<paramref name="thinkPrefilled"/>), the completion is judged as if it began with it.
/// </summary>
public sealed class FormatReward(bool thinkPrefilled = false) : IRewardFunction
{
    public string Name => "format";

    public float? Score(RewardInput input) => IsWellFormed(input.Completion, thinkPrefilled) ? 1f : 0f;

    public static bool IsWellFormed(string completion, bool thinkPrefilled)
    {
        var text = (thinkPrefilled ? CharTokenizer.ThinkStart : "") + completion;
        text = text.TrimStart();
        if (!text.StartsWith(CharTokenizer.ThinkStart, StringComparison.Ordinal)) return false;
        if (Count(text, CharTokenizer.ThinkStart) != 1 || Count(text, CharTokenizer.ThinkEnd) != 1) return false;
        int end = text.IndexOf(CharTokenizer.ThinkEnd, StringComparison.Ordinal);
        if (string.IsNullOrWhiteSpace(text[CharTokenizer.ThinkStart.Length..end])) return false;
        return AnswerParsing.LastBoxed(text[(end + CharTokenizer.ThinkEnd.Length)..]) != null;
    }

    private static int Count(string s, string sub)
    {
        int n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}

/// <summary>
/// Language / charset consistency (R1's language reward, for a character alphabet): the share of the
/// reasoning's characters (inside <c>&lt;think&gt;…&lt;/think&gt;</c>; to the end when unclosed) that are allowed.
/// Default alphabet: printable ASCII, newline and tab. Skips completions with no reasoning.
/// </summary>
public sealed class CharsetReward(Func<char, bool>? allowed = null, bool thinkPrefilled = false) : IRewardFunction
{
    private readonly Func<char, bool> _allowed = allowed ?? (c => c is >= ' ' and <= '~' or '\n' or '\t');

    public string Name => "charset";

    public float? Score(RewardInput input)
    {
        var text = (thinkPrefilled ? CharTokenizer.ThinkStart : "") + input.Completion;
        int start = text.IndexOf(CharTokenizer.ThinkStart, StringComparison.Ordinal);
        if (start < 0) return null;
        start += CharTokenizer.ThinkStart.Length;
        int end = text.IndexOf(CharTokenizer.ThinkEnd, start, StringComparison.Ordinal);
        var reasoning = end < 0 ? text[start..] : text[start..end];
        if (reasoning.Length == 0) return null;
        return (float)reasoning.Count(_allowed) / reasoning.Length;
    }
}

/// <summary>
/// DAPO's soft overlong punishment on the completion length L (tokens), with L_max and a cache L_c:
/// 0 when L ≤ L_max − L_c, (L_max − L_c − L) / L_c in between, −1 beyond L_max.
/// </summary>
public sealed class SoftOverlongPunishment : IRewardFunction
{
    public int MaxLength { get; }
    public int CacheLength { get; }

    public SoftOverlongPunishment(int maxLength, int cacheLength)
    {
        if (cacheLength <= 0 || cacheLength > maxLength)
            throw new ArgumentOutOfRangeException(nameof(cacheLength), $"soft overlong punishment needs 0 < cache ({cacheLength}) ≤ max length ({maxLength})");
        MaxLength = maxLength;
        CacheLength = cacheLength;
    }

    public string Name => "overlong";

    public float? Score(RewardInput input)
    {
        int len = input.CompletionTokens, free = MaxLength - CacheLength;
        if (len <= free) return 0f;
        if (len <= MaxLength) return (float)(free - len) / CacheLength;
        return -1f;
    }
}
