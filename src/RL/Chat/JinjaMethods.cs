using System.Text;

namespace NativeReasoner.RL.Chat;

/// <summary>
/// The Python str and dict methods templates call (<c>content.split('&lt;/think&gt;')</c>, <c>message.get('x')</c>,
/// <c>d.items()</c>), with Python's semantics. Mutating methods (append, update, pop…) are absent, as in HF's
/// immutable sandbox.
/// </summary>
internal static class JinjaMethods
{
    public static JinjaFunction? StringMethod(string s, string name) => name switch
    {
        "split" => Method(name, a => Split(s, a, fromRight: false)),
        "rsplit" => Method(name, a => Split(s, a, fromRight: true)),
        "strip" => Method(name, a => Strip(s, a, name, left: true, right: true)),
        "lstrip" => Method(name, a => Strip(s, a, name, left: true, right: false)),
        "rstrip" => Method(name, a => Strip(s, a, name, left: false, right: true)),
        "startswith" => Method(name, a => Affix(s, a, name, (x, p) => x.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => Method(name, a => Affix(s, a, name, (x, p) => x.EndsWith(p, StringComparison.Ordinal))),
        "replace" => Method(name, a => Replace(s, a)),
        "upper" => Method(name, _ => s.ToUpperInvariant()),
        "lower" => Method(name, _ => s.ToLowerInvariant()),
        "title" => Method(name, _ => Title(s)),
        "capitalize" => Method(name, _ => Capitalize(s)),
        "find" => Method(name, a => (long)CodePointIndex(s, s.IndexOf(Str(a.Get(0, "sub"), "find"),
            StringComparison.Ordinal))),
        "rfind" => Method(name, a => (long)CodePointIndex(s, s.LastIndexOf(Str(a.Get(0, "sub"), "rfind"),
            StringComparison.Ordinal))),
        "count" => Method(name, a => Count(s, Str(a.Get(0, "sub"), "count"))),
        "join" => Method(name, a => string.Join(s, JinjaValue.Iterate(a.Get(0, "iterable")).Select(x =>
            x as string ?? throw new JinjaError($"str.join expects strings, found {JinjaValue.TypeName(x)}")))),
        "isdigit" => Method(name, _ => s.Length > 0 && s.EnumerateRunes().All(Rune.IsDigit)),
        "isalpha" => Method(name, _ => s.Length > 0 && s.EnumerateRunes().All(Rune.IsLetter)),
        "isalnum" => Method(name, _ => s.Length > 0 && s.EnumerateRunes().All(Rune.IsLetterOrDigit)),
        "isspace" => Method(name, _ => s.Length > 0 && s.All(char.IsWhiteSpace)),
        "isupper" => Method(name, _ => s.Any(char.IsLetter) && !s.Any(char.IsLower)),
        "islower" => Method(name, _ => s.Any(char.IsLetter) && !s.Any(char.IsUpper)),
        _ => null,
    };

    public static JinjaFunction? DictMethod(OrderedDictionary<object, object?> d, string name) => name switch
    {
        "items" => Method(name, _ => d.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList()),
        "keys" => Method(name, _ => d.Keys.Cast<object?>().ToList()),
        "values" => Method(name, _ => d.Values.ToList()),
        "get" => Method(name, a =>
        {
            var key = a.Get(0, "key");
            return key != null && key is not JinjaUndefined && d.TryGetValue(key, out var v) ? v : a.Get(1, "default");
        }),
        _ => null,
    };

    private static JinjaFunction Method(string name, Func<JinjaArguments, object?> body) => new(name, body);

    private static string Str(object? v, string method) =>
        v as string ?? throw new JinjaError($"{method}() argument must be str, not {JinjaValue.TypeName(v)}");

    private static int CodePointIndex(string s, int utf16Index) =>
        utf16Index < 0 ? -1 : s.AsSpan(0, utf16Index).ToString().EnumerateRunes().Count();

    private static long Count(string s, string sub)
    {
        if (sub.Length == 0) return JinjaValue.Length(s) + 1;
        long n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0;
             i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal))
            n++;
        return n;
    }

    private static List<object?> Split(string s, JinjaArguments a, bool fromRight)
    {
        var sep = a.Get(0, "sep");
        long max = a.Get(1, "maxsplit", -1L) is var m && JinjaValue.IsInteger(m) ? JinjaValue.ToLong(m) : -1;
        var parts = new List<string>();
        if (sep is null)
        {
            // Python: runs of whitespace separate, leading/trailing whitespace gives no empty parts.
            var words = new List<(int Start, int End)>();
            int i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
                if (i >= s.Length) break;
                int start = i;
                while (i < s.Length && !char.IsWhiteSpace(s[i])) i++;
                words.Add((start, i));
            }
            if (max < 0 || words.Count <= max + 1) return words.Select(w => (object?)s[w.Start..w.End]).ToList();
            var result = new List<object?>();
            if (!fromRight)
            {
                for (int k = 0; k < max; k++) result.Add(s[words[k].Start..words[k].End]);
                result.Add(s[words[(int)max].Start..].TrimEnd());
            }
            else
            {
                int keep = words.Count - (int)max;
                result.Add(s[..words[keep - 1].End].TrimStart());
                for (int k = keep; k < words.Count; k++) result.Add(s[words[k].Start..words[k].End]);
            }
            return result;
        }
        string separator = Str(sep, "split");
        if (separator.Length == 0) throw new JinjaError("split(): empty separator");
        var all = s.Split(separator);
        if (max < 0 || all.Length <= max + 1) return all.Select(p => (object?)p).ToList();
        if (!fromRight)
            return [.. all.Take((int)max), string.Join(separator, all.Skip((int)max))];
        int head = all.Length - (int)max;
        return [string.Join(separator, all.Take(head)), .. all.Skip(head)];
    }

    private static string Strip(string s, JinjaArguments a, string method, bool left, bool right)
    {
        var chars = a.Get(0, "chars");
        Func<char, bool> strip = chars is null ? char.IsWhiteSpace : Str(chars, method).Contains;
        int start = 0, end = s.Length;
        if (left) while (start < end && strip(s[start])) start++;
        if (right) while (end > start && strip(s[end - 1])) end--;
        return s[start..end];
    }

    private static bool Affix(string s, JinjaArguments a, string method, Func<string, string, bool> test)
    {
        var arg = a.Get(0, "prefix");
        if (arg is object?[] options) return options.Any(o => test(s, Str(o, method)));
        return test(s, Str(arg, method));
    }

    private static string Replace(string s, JinjaArguments a)
    {
        string old = Str(a.Get(0, "old"), "replace"), replacement = Str(a.Get(1, "new"), "replace");
        long count = a.Get(2, "count", -1L) is var c && JinjaValue.IsInteger(c) ? JinjaValue.ToLong(c) : -1;
        if (count < 0)
            return old.Length == 0
                ? InsertEverywhere(s, replacement)
                : s.Replace(old, replacement, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count && old.Length > 0; n++)
        {
            int i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0) break;
            sb.Append(s, pos, i - pos).Append(replacement);
            pos = i + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static string InsertEverywhere(string s, string insert) =>
        insert + string.Concat(JinjaValue.CodePoints(s).Select(c => c + insert));

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }
        return sb.ToString();
    }
}
