namespace NativeReasoner.RL.Chat;

/// <summary>
/// A completion split into its reasoning and its answer. <see cref="HasThinking"/>: the output contained (or was
/// forced into) a thinking block; <see cref="ThinkingClosed"/>: that block ended with <c>&lt;/think&gt;</c> (false when
/// generation stopped inside it, e.g. at max_new_tokens, so the answer is empty).
/// </summary>
public sealed record ThinkingParts(string Reasoning, string Answer, bool HasThinking, bool ThinkingClosed);

/// <summary>
/// Splits R1-family outputs into reasoning and answer:
/// <list type="bullet">
/// <item><c>&lt;think&gt;R&lt;/think&gt;A</c> → R, A.</item>
/// <item>Only <c>R&lt;/think&gt;A</c>: the template forced <c>&lt;think&gt;\n</c> into the prompt → R, A.</item>
/// <item><c>&lt;think&gt;R</c> with no end (or any text when <c>thinkingForced</c>) → unterminated: R, "".</item>
/// <item>No tags → "", the whole text.</item>
/// </list>
/// The reasoning ends at the first <c>&lt;/think&gt;</c>; the answer is all that follows it, without the whitespace
/// right after the tag; the reasoning is trimmed of the whitespace around it.
/// </summary>
public static class ThinkingSplit
{
    public const string Open = "<think>";
    public const string Close = "</think>";

    /// <param name="output">The generated text (prompt excluded).</param>
    /// <param name="thinkingForced">The prompt ended inside a thinking block (it ends with
    /// <c>&lt;think&gt;</c>).</param>
    public static ThinkingParts Split(string output, bool thinkingForced = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        int close = output.IndexOf(Close, StringComparison.Ordinal);
        if (close >= 0)
        {
            var answer = output[(close + Close.Length)..].TrimStart();
            return new ThinkingParts(Reasoning(output[..close]), answer, true, true);
        }
        if (thinkingForced || StartsWithOpen(output))
            return new ThinkingParts(Reasoning(output), "", true, false);
        return new ThinkingParts("", output, false, false);
    }

    /// <summary>True when the prompt leaves the model inside a thinking block (ends with <c>&lt;think&gt;</c> and
    /// whitespace).</summary>
    public static bool PromptForcesThinking(string prompt) => prompt.TrimEnd().EndsWith(Open, StringComparison.Ordinal);

    private static bool StartsWithOpen(string s) => s.TrimStart().StartsWith(Open, StringComparison.Ordinal);

    private static string Reasoning(string beforeClose)
    {
        var s = beforeClose.TrimStart();
        if (s.StartsWith(Open, StringComparison.Ordinal)) s = s[Open.Length..];
        return s.Trim();
    }
}
