// Evaluates a Hugging Face tokenizer.json regex by Unicode code point, the way the Rust tokenizers (Oniguruma)
// and JavaScript's /u regexes do, on top of .NET's UTF-16 Regex.
using System.Globalization;
using System.Text.RegularExpressions;

namespace NativeReasoner.RL.Tokenizers;

/// <summary>
/// A regex matched by code point. .NET's <see cref="Regex"/> walks UTF-16 code units, so <c>\p{L}</c> or
/// <c>\p{S}</c> never match a surrogate pair (emoji, CJK extension B, math letters) and <c>[^…]</c> would match
/// its halves one by one. Before matching, every supplementary code point is replaced by one BMP stand-in
/// character of the same general category that no literal character or range of the pattern covers; match
/// spans are then mapped back to the original text. Text without surrogates is matched as is.
/// </summary>
public sealed class CodePointRegex
{
    private readonly Regex _regex;
    // UnicodeCategory → stand-in BMP character with that category (or '\0' where the BMP has none usable).
    private readonly char[] _standIn;

    [ThreadStatic] private static char[]? t_mapped;
    [ThreadStatic] private static int[]? t_origin;

    public string Pattern { get; }

    public CodePointRegex(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        Pattern = pattern;
        try
        {
            _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"tokenizer regex '{pattern}' is not supported by .NET's regex engine: " +
                $"{e.Message}", e);
        }
        _standIn = ChooseStandIns(LiteralRanges(pattern));
    }

    /// <summary>Appends the non-empty matches in <paramref name="text"/> as (start, length) spans of it.</summary>
    public void Matches(ReadOnlySpan<char> text, List<(int Start, int Length)> output)
    {
        if (text.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            foreach (var m in _regex.EnumerateMatches(text))
                if (m.Length > 0) output.Add((m.Index, m.Length));
            return;
        }
        // mapped[j] is the character matched in place of text[origin[j]]; origin[mapped.Length] = text.Length.
        var mapped = t_mapped is { } buffer && buffer.Length >= text.Length ? buffer
            : t_mapped = new char[Math.Max(text.Length, 256)];
        var origin = t_origin is { } o && o.Length > text.Length ? o
            : t_origin = new int[Math.Max(text.Length + 1, 257)];
        int n = 0;
        for (int i = 0; i < text.Length; i++, n++)
        {
            char c = text[i];
            origin[n] = i;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int codePoint = char.ConvertToUtf32(c, text[i + 1]);
                char standIn = _standIn[(int)CharUnicodeInfo.GetUnicodeCategory(codePoint)];
                if (standIn != '\0')
                {
                    mapped[n] = standIn;
                    i++;
                }
                else
                {
                    // no usable stand-in for this category: the pair stays, matched as two code units
                    mapped[n] = c;
                    origin[++n] = i + 1;
                    mapped[n] = text[++i];
                }
            }
            else mapped[n] = c; // lone surrogates stay: category Cs, as in JavaScript and Rust
        }
        origin[n] = text.Length;
        foreach (var m in _regex.EnumerateMatches(mapped.AsSpan(0, n)))
            if (m.Length > 0) output.Add((origin[m.Index], origin[m.Index + m.Length] - origin[m.Index]));
    }

    // Every character the pattern names literally (single characters and a-b ranges, inside or outside [...]):
    // a stand-in must not be one of them, or the mapped text could match where the original does not.
    public static List<(int Lo, int Hi)> LiteralRanges(string pattern)
    {
        var ranges = new List<(int, int)>();
        bool inClass = false;
        int i = 0;
        int? pendingLow = null; // inside a class: the literal just read, which may start a range
        while (i < pattern.Length)
        {
            char c = pattern[i];
            int? literal = null;
            if (c == '\\' && i + 1 < pattern.Length)
            {
                char e = pattern[i + 1];
                if ((e == 'p' || e == 'P') && i + 2 < pattern.Length && pattern[i + 2] == '{')
                {
                    int close = pattern.IndexOf('}', i + 3);
                    i = close < 0 ? pattern.Length : close + 1;
                    pendingLow = null;
                    continue;
                }
                if (e == 'u' && i + 5 < pattern.Length && int.TryParse(pattern.AsSpan(i + 2, 4),
                    NumberStyles.HexNumber, null, out int u))
                { literal = u; i += 6; }
                else if (e == 'x' && i + 3 < pattern.Length && int.TryParse(pattern.AsSpan(i + 2, 2),
                    NumberStyles.HexNumber, null, out int x))
                { literal = x; i += 4; }
                else
                {
                    literal = e switch
                    {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'f' => '\f',
                        'v' => '\v',
                        _ => char.IsLetterOrDigit(e) ? null : e
                    };
                    i += 2;
                }
            }
            else
            {
                i++;
                if (c == '[' && !inClass)
                {
                    inClass = true;
                    pendingLow = null;
                    if (i < pattern.Length && pattern[i] == '^') i++;
                    continue;
                }
                if (c == ']' && inClass) { inClass = false; pendingLow = null; continue; }
                if (inClass && c == '-' && pendingLow != null && i < pattern.Length && pattern[i] != ']')
                {
                    // a range: read its upper end
                    int hi = pattern[i];
                    if (hi == '\\' && i + 5 < pattern.Length && pattern[i + 1] == 'u'
                        && int.TryParse(pattern.AsSpan(i + 2, 4), NumberStyles.HexNumber, null, out int hu))
                    { hi = hu; i += 6; }
                    else if (hi == '\\' && i + 1 < pattern.Length) { hi = pattern[i + 1]; i += 2; }
                    else i++;
                    ranges.Add((pendingLow.Value, hi));
                    pendingLow = null;
                    continue;
                }
                literal = c;
            }
            if (literal != null)
            {
                ranges.Add((literal.Value, literal.Value));
                pendingLow = inClass ? literal : null;
            }
        }
        return ranges;
    }

    private static char[] ChooseStandIns(List<(int Lo, int Hi)> literals)
    {
        bool Covered(char c)
        {
            foreach (var (lo, hi) in literals)
            {
                if (c >= lo && c <= hi) return true;
                char upper = char.ToUpperInvariant(c), lower = char.ToLowerInvariant(c);
                if (upper >= lo && upper <= hi || lower >= lo && lower <= hi) return true;
            }
            return false;
        }
        var standIn = new char[32];
        // Start above Latin so that case-insensitive groups such as (?i:'s|'t) cannot fold onto a stand-in.
        for (int c = 0x0370; c <= 0xFFFD; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            var ch = (char)c;
            int category = (int)CharUnicodeInfo.GetUnicodeCategory(ch);
            if (standIn[category] != '\0' || char.IsWhiteSpace(ch) || Covered(ch)) continue;
            standIn[category] = ch;
        }
        return standIn;
    }
}
