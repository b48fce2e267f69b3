// Source: the \boxed{} answer extraction of DeepSeek-R1 (arXiv:2501.12948) style rule-based rewards (open-r1
//         rewards.py).
using System.Globalization;

namespace NativeReasoner.RL;

/// <summary>Extraction of the final answer from a completion and numeric comparison.</summary>
public static class AnswerParsing
{
    /// <summary>The content of the LAST <c>\boxed{…}</c> (braces balanced), or null when there is none / it is unclosed.</summary>
    public static string? LastBoxed(string text)
    {
        int start = text.LastIndexOf(@"\boxed{", StringComparison.Ordinal);
        if (start >= 0)
        {
            int i = start + @"\boxed{".Length, depth = 1;
            for (int j = i; j < text.Length; j++)
            {
                if (text[j] == '{') depth++;
                else if (text[j] == '}' && --depth == 0) return text[i..j];
            }
            // Unclosed: an earlier complete \boxed{} does not count as the final answer either.
            return null;
        }
        return null;
    }

    /// <summary>
    /// Parses a number as a person writes it: optional sign, thousands commas, decimals, a fraction a/b or
    /// \frac{a}{b}, surrounding $ or spaces, a trailing period.
    /// </summary>
    public static bool TryParseNumber(string? s, out double value)
    {
        value = 0;
        if (s == null) return false;
        var t = s.Trim().Trim('$').Trim().TrimEnd('.').Replace(" ", "").Replace("\u2212", "-");
        if (t.StartsWith(@"\frac{", StringComparison.Ordinal) || t.StartsWith(@"-\frac{", StringComparison.Ordinal))
        {
            bool neg = t[0] == '-';
            var body = t[(neg ? 6 : 5)..];
            int close = body.IndexOf('}');
            if (close < 0 || close + 1 >= body.Length || body[close + 1] != '{' || !body.EndsWith('}')) return false;
            if (!TryParseNumber(body[1..close], out var num) || !TryParseNumber(body[(close + 2)..^1], out var den) || den == 0) return false;
            value = (neg ? -num : num) / den;
            return true;
        }
        int slash = t.IndexOf('/');
        if (slash > 0)
        {
            if (!TryParseNumber(t[..slash], out var num) || !TryParseNumber(t[(slash + 1)..], out var den) || den == 0) return false;
            value = num / den;
            return true;
        }
        // Commas only as thousands separators (1,234), never as decimal commas.
        if (t.Contains(','))
        {
            var parts = t.TrimStart('-', '+').Split('.')[0].Split(',');
            if (parts.Skip(1).Any(p => p.Length != 3)) return false;
            t = t.Replace(",", "");
        }
        if (t.Length == 0 || t.Any(c => !(char.IsAsciiDigit(c) || c is '-' or '+' or '.'))) return false;
        return double.TryParse(t, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);
    }

    public static bool NumbersEqual(double a, double b) => Math.Abs(a - b) <= 1e-9 * Math.Max(1.0, Math.Max(Math.Abs(a), Math.Abs(b)));
}
