using System.Globalization;
using System.Text;

namespace NativeReasoner.RL.Chat;

internal enum TokenKind
{
    Data, BlockBegin, BlockEnd, VariableBegin, VariableEnd, Name, String, Integer, Float,
    Operator, Eof
}

internal readonly record struct JinjaToken(TokenKind Kind, string Value, int Line)
{
    public object? Literal { get; init; }

    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;

    public bool IsOperator(string value) => Kind == TokenKind.Operator && Value == value;

    public bool IsName(string value) => Kind == TokenKind.Name && Value == value;

    public override string ToString() => Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.String => "string " + JinjaValue.Repr(Value),
        _ => $"'{Value}'",
    };
}

/// <summary>
/// Splits a template into text and tag tokens the way jinja2's lexer does with HF's settings
/// (<c>trim_blocks</c>, <c>lstrip_blocks</c>, no <c>keep_trailing_newline</c>):
/// <list type="bullet">
/// <item><c>{%-</c> / <c>{{-</c> / <c>{#-</c> strip all whitespace before the tag; <c>-%}</c> / <c>-}}</c> / <c>-#}</c>
/// after it.</item>
/// <item>trim_blocks: one newline right after <c>%}</c> or <c>#}</c> is dropped (not after <c>}}</c>).</item>
/// <item>lstrip_blocks: spaces and tabs between a line start and <c>{%</c> / <c>{#</c> are dropped; <c>{%+</c> keeps
/// them.</item>
/// </list>
/// Inside tags it produces names, literals and operators; a <c>}}</c> or <c>%}</c> inside open brackets is an operator.
/// </summary>
internal static class JinjaLexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":", "|", "(", ")",
            "[", "]", "{", "}"];

    public static List<JinjaToken> Tokenize(string source)
    {
        // Without keep_trailing_newline one final newline of the template is not part of the output.
        if (source.EndsWith('\n')) source = source[..^(source.EndsWith("\r\n", StringComparison.Ordinal) ? 2 : 1)];
        var tokens = new List<JinjaToken>();
        int pos = 0, line = 1;
        bool lineStarting = true;
        while (pos < source.Length)
        {
            int open = FindTagStart(source, pos);
            if (open < 0)
            {
                Emit(tokens, source[pos..], line);
                break;
            }
            char kind = source[open + 1];
            char sign = open + 2 < source.Length && source[open + 2] is '-' or '+' ? source[open + 2] : '\0';
            string text = source[pos..open];
            if (sign == '-') text = text.TrimEnd();
            else if (sign != '+' && kind != '{')
            {
                int lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.Length && IsBlank(text, lineStart))
                    text = text[..lineStart];
            }
            Emit(tokens, text, line);
            line += CountNewlines(source, pos, open);
            int inner = open + 2 + (sign != '\0' ? 1 : 0);
            if (kind == '#')
            {
                int close = source.IndexOf("#}", inner, StringComparison.Ordinal);
                if (close < 0) throw new TemplateException(line, "missing end of comment tag '#}'");
                bool strip = close > inner && source[close - 1] == '-';
                line += CountNewlines(source, open, close);
                pos = AfterTagEnd(source, close + 2, strip ? '-' : source[close - 1] == '+' ? '+' : '\0', true,
                    ref line);
                lineStarting = pos > 0 && source[pos - 1] == '\n';
                continue;
            }
            if (kind == '%' && IsRawStart(source, inner, out int rawBodyStart, out bool rawStrip))
            {
                pos = LexRaw(source, rawBodyStart, rawStrip, tokens, ref line);
                lineStarting = pos > 0 && source[pos - 1] == '\n';
                continue;
            }
            tokens.Add(new JinjaToken(kind == '%' ? TokenKind.BlockBegin : TokenKind.VariableBegin, kind == '%'
                ? "{%" : "{{", line));
            pos = LexTag(source, inner, kind == '%', tokens, ref line);
            lineStarting = pos > 0 && source[pos - 1] == '\n';
        }
        tokens.Add(new JinjaToken(TokenKind.Eof, "", line));
        return tokens;
    }

    private static int FindTagStart(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    private static bool IsBlank(string s, int from)
    {
        for (int i = from; i < s.Length; i++)
            if (!char.IsWhiteSpace(s[i])) return false;
        return true;
    }

    private static int CountNewlines(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (s[i] == '\n') n++;
        return n;
    }

    private static void Emit(List<JinjaToken> tokens, string text, int line)
    {
        if (text.Length > 0) tokens.Add(new JinjaToken(TokenKind.Data, text, line));
    }

    /// <summary>Position after a tag end: '-' eats all following whitespace, trim_blocks one newline after %} /
    /// #}.</summary>
    private static int AfterTagEnd(string s, int pos, char sign, bool isBlock, ref int line)
    {
        if (sign == '-')
        {
            while (pos < s.Length && char.IsWhiteSpace(s[pos]))
            {
                if (s[pos] == '\n') line++;
                pos++;
            }
        }
        else if (sign != '+' && isBlock && pos < s.Length && s[pos] == '\n')
        {
            line++;
            pos++;
        }
        return pos;
    }

    private static bool IsRawStart(string s, int inner, out int bodyStart, out bool strip)
    {
        bodyStart = 0;
        strip = false;
        int i = SkipSpaces(s, inner);
        if (string.CompareOrdinal(s, i, "raw", 0, 3) != 0) return false;
        i = SkipSpaces(s, i + 3);
        if (i < s.Length && s[i] == '-') { strip = true; i++; }
        if (string.CompareOrdinal(s, i, "%}", 0, 2) != 0) return false;
        bodyStart = i + 2;
        return true;
    }

    private static int SkipSpaces(string s, int i)
    {
        while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        return i;
    }

    private static int LexRaw(string s, int bodyStart, bool strip, List<JinjaToken> tokens, ref int line)
    {
        int start = bodyStart;
        if (strip) start = SkipSpaces(s, start);
        for (int i = s.IndexOf(
            "{%", start, StringComparison.Ordinal); i >= 0; i = s.IndexOf("{%", i + 2, StringComparison.Ordinal))
        {
            int j = i + 2;
            char sign = j < s.Length && s[j] is '-' or '+' ? s[j++] : '\0';
            j = SkipSpaces(s, j);
            if (string.CompareOrdinal(s, j, "endraw", 0, 6) != 0) continue;
            j = SkipSpaces(s, j + 6);
            char endSign = '\0';
            if (j < s.Length && s[j] is '-' or '+') endSign = s[j++];
            if (string.CompareOrdinal(s, j, "%}", 0, 2) != 0) continue;
            string body = s[start..i];
            if (sign == '-') body = body.TrimEnd();
            Emit(tokens, body, line);
            line += CountNewlines(s, bodyStart, j);
            return AfterTagEnd(s, j + 2, endSign, true, ref line);
        }
        throw new TemplateException(line, "missing end of raw block '{% endraw %}'");
    }

    private static int LexTag(string s, int pos, bool isBlock, List<JinjaToken> tokens, ref int line)
    {
        var brackets = new Stack<char>();
        while (true)
        {
            while (pos < s.Length && char.IsWhiteSpace(s[pos]))
            {
                if (s[pos] == '\n') line++;
                pos++;
            }
            if (pos >= s.Length) throw new TemplateException(line,
                $"unexpected end of template inside '{(isBlock ? "{%" : "{{")}'; missing '{(isBlock ? "%}" : "}}")}'");
            if (brackets.Count == 0)
            {
                string end = isBlock ? "%}" : "}}";
                char sign = s[pos] is '-' or '+' && string.CompareOrdinal(s, pos + 1, end, 0, 2) == 0 ? s[pos] : '\0';
                if (sign != '\0' && !(sign == '+' && !isBlock) || string.CompareOrdinal(s, pos, end, 0, 2) == 0)
                {
                    tokens.Add(new JinjaToken(isBlock ? TokenKind.BlockEnd : TokenKind.VariableEnd, end, line));
                    return AfterTagEnd(s, pos + 2 + (sign != '\0' ? 1 : 0), sign, isBlock, ref line);
                }
            }
            char c = s[pos];
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = pos;
                while (pos < s.Length && (char.IsAsciiLetterOrDigit(s[pos]) || s[pos] == '_')) pos++;
                tokens.Add(new JinjaToken(TokenKind.Name, s[start..pos], line));
            }
            else if (char.IsAsciiDigit(c))
                pos = LexNumber(s, pos, tokens, line);
            else if (c is '\'' or '"')
                pos = LexString(s, pos, tokens, ref line);
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, pos, o, 0, o.Length) == 0);
                if (op == null) throw new TemplateException(line, $"unexpected character '{c}' inside a tag");
                if (op is "(" or "[" or "{") brackets.Push(op == "(" ? ')' : op == "[" ? ']' : '}');
                else if (op is ")" or "]" or "}")
                {
                    if (brackets.Count == 0) throw new TemplateException(line, $"unexpected '{op}'");
                    char expected = brackets.Pop();
                    if (expected != op[0]) throw new TemplateException(line,
                        $"unexpected '{op}', expected '{expected}'");
                }
                tokens.Add(new JinjaToken(TokenKind.Operator, op, line));
                pos += op.Length;
            }
        }
    }

    private static int LexNumber(string s, int pos, List<JinjaToken> tokens, int line)
    {
        int start = pos;
        while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        bool isFloat = false;
        if (pos + 1 < s.Length && s[pos] == '.' && char.IsAsciiDigit(s[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        }
        if (pos < s.Length && s[pos] is 'e' or 'E')
        {
            int e = pos + 1;
            if (e < s.Length && s[e] is '+' or '-') e++;
            if (e < s.Length && char.IsAsciiDigit(s[e]))
            {
                isFloat = true;
                pos = e;
                while (pos < s.Length && char.IsAsciiDigit(s[pos])) pos++;
            }
        }
        string text = s[start..pos].Replace("_", "", StringComparison.Ordinal);
        if (isFloat)
        {
            tokens.Add(new JinjaToken(TokenKind.Float, text, line)
            {
                Literal = double.Parse(text, CultureInfo.InvariantCulture),
            });
            return pos;
        }
        // Python's integers are unbounded; the template values here are 64-bit.
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
            throw new TemplateException(line, $"integer literal {(text.Length <= 40 ? text : text[..40] + "…")} " +
                                              $"does not fit in 64 bits (at most {long.MaxValue})");
        tokens.Add(new JinjaToken(TokenKind.Integer, text, line) { Literal = value });
        return pos;
    }

    /// <summary>A quoted string with Python escapes (\n, \t, \\, \', \", \xNN, \uNNNN, \UNNNNNNNN).</summary>
    private static int LexString(string s, int pos, List<JinjaToken> tokens, ref int line)
    {
        char quote = s[pos];
        int startLine = line;
        var sb = new StringBuilder();
        pos++;
        while (true)
        {
            if (pos >= s.Length) throw new TemplateException(startLine, "unterminated string literal");
            char c = s[pos];
            if (c == quote) { pos++; break; }
            if (c == '\n') line++;
            if (c != '\\' || pos + 1 >= s.Length)
            {
                sb.Append(c);
                pos++;
                continue;
            }
            char e = s[pos + 1];
            pos += 2;
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '\n': line++; break;
                case 'x': sb.Append(HexEscape(s, ref pos, 2, startLine)); break;
                case 'u': sb.Append(HexEscape(s, ref pos, 4, startLine)); break;
                case 'U': sb.Append(HexEscape(s, ref pos, 8, startLine)); break;
                default: sb.Append('\\').Append(e); break;
            }
        }
        tokens.Add(new JinjaToken(TokenKind.String, sb.ToString(), startLine));
        return pos;
    }

    private static string HexEscape(string s, ref int pos, int digits, int line)
    {
        if (pos + digits > s.Length || !int.TryParse(s.AsSpan(pos, digits), NumberStyles.AllowHexSpecifier,
            CultureInfo.InvariantCulture, out int cp)
            || !Rune.IsValid(cp))
            throw new TemplateException(line,
                $"bad \\{(digits == 2 ? "x" : digits == 4 ? "u" : "U")} escape in a string literal");
        pos += digits;
        return char.ConvertFromUtf32(cp);
    }
}
