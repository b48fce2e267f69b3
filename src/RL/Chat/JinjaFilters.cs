using System.Text;

namespace NativeReasoner.RL.Chat;

/// <summary>
/// The jinja2 filters chat templates use, with jinja2's semantics, and HF's <c>tojson</c> (no HTML escaping,
/// non-ASCII kept, optional indent). Filters that return generators in jinja2 (map, select…) return lists.
/// </summary>
internal static class JinjaFilters
{
    public delegate object? Filter(JinjaContext context, object? value, JinjaArguments arguments, string name);

    private static readonly Dictionary<string, Filter> Registry = new(StringComparer.Ordinal)
    {
        ["abs"] = (_, v, _, _) => v is double d ? Math.Abs(d) : (object)Math.Abs(JinjaValue.ToLong(v)),
        ["capitalize"] = (_, v, _, _) => JinjaMethods.Capitalize(JinjaValue.ToStr(v)),
        ["count"] = (_, v, _, _) => JinjaValue.Length(v),
        ["length"] = (_, v, _, _) => JinjaValue.Length(v),
        ["default"] = Default,
        ["d"] = Default,
        ["first"] = (_, v, _, _) => JinjaValue.Iterate(v) is { Count: > 0 } l ? l[0]
            : new JinjaUndefined("the first item of an empty sequence"),
        ["last"] = (_, v, _, _) => JinjaValue.Iterate(v) is { Count: > 0 } l ? l[^1]
            : new JinjaUndefined("the last item of an empty sequence"),
        ["float"] = ToFloat,
        ["int"] = ToInt,
        ["indent"] = Indent,
        ["items"] = (_, v, _, _) => v switch
        {
            JinjaUndefined => new List<object?>(),
            OrderedDictionary<object, object?> d =>
                d.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList(),
            _ => throw new JinjaError(
                $"items filter: can only get item pairs from a mapping, not {JinjaValue.TypeName(v)}"),
        },
        ["join"] = Join,
        ["list"] = (_, v, _, _) => JinjaValue.Iterate(v),
        ["lower"] = (_, v, _, _) => JinjaValue.ToStr(v).ToLowerInvariant(),
        ["upper"] = (_, v, _, _) => JinjaValue.ToStr(v).ToUpperInvariant(),
        ["title"] = (_, v, _, _) => JinjaMethods.Title(JinjaValue.ToStr(v)),
        ["trim"] = (_, v, a, _) =>
        {
            var fn = JinjaMethods.StringMethod(JinjaValue.ToStr(v), "strip")!;
            return fn.Invoke(new JinjaArguments([a.Get(0, "chars")], new Dictionary<string, object?>()));
        },
        ["replace"] = (_, v, a, _) =>
        {
            var fn = JinjaMethods.StringMethod(JinjaValue.ToStr(v), "replace")!;
            return fn.Invoke(new JinjaArguments([a.Get(0, "old"), a.Get(1, "new"), a.Get(2, "count", -1L) ?? -1L],
                new Dictionary<string, object?>()));
        },
        ["string"] = (_, v, _, _) => JinjaValue.ToStr(v),
        ["safe"] = (_, v, _, _) => JinjaValue.ToStr(v),
        ["reverse"] = (_, v, _, _) => v is string s ? string.Concat(JinjaValue.CodePoints(s).Reverse())
            : JinjaValue.Iterate(v).AsEnumerable().Reverse().ToList(),
        ["round"] = Round,
        ["map"] = Map,
        ["select"] = (c, v, a, _) => Select(c, v, a, keep: true, byAttribute: false),
        ["reject"] = (c, v, a, _) => Select(c, v, a, keep: false, byAttribute: false),
        ["selectattr"] = (c, v, a, _) => Select(c, v, a, keep: true, byAttribute: true),
        ["rejectattr"] = (c, v, a, _) => Select(c, v, a, keep: false, byAttribute: true),
        ["sort"] = Sort,
        ["unique"] = Unique,
        ["min"] = (c, v, a, _) => Extreme(v, a, sign: -1),
        ["max"] = (c, v, a, _) => Extreme(v, a, sign: 1),
        ["sum"] = Sum,
        ["tojson"] = ToJson,
        ["dictsort"] = DictSort,
    };

    public static Filter? Find(string name) => Registry.GetValueOrDefault(name);

    public static IEnumerable<string> Names => Registry.Keys;

    private static object? Default(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 2, "default_value", "boolean");
        bool boolean = JinjaValue.IsTrue(a.Get(1, "boolean", false));
        bool useDefault = v is JinjaUndefined || (boolean && !JinjaValue.IsTrue(v));
        return useDefault ? a.Get(0, "default_value", "") : v;
    }

    private static object? ToFloat(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        var fallback = a.Get(0, "default", 0.0);
        if (JinjaValue.IsNumber(v)) return JinjaValue.ToDouble(v);
        if (v is string s && double.TryParse(s.Trim(), System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var d)) return d;
        return fallback;
    }

    private static object? ToInt(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        var fallback = a.Get(0, "default", 0L);
        if (v is double d) return (long)d;
        if (JinjaValue.IsInteger(v)) return JinjaValue.ToLong(v);
        if (v is string s)
        {
            var t = s.Trim().Replace("_", "", StringComparison.Ordinal);
            if (long.TryParse(t, System.Globalization.NumberStyles.AllowLeadingSign,
                System.Globalization.CultureInfo.InvariantCulture, out var l)) return l;
            if (double.TryParse(t, System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var f)) return (long)f;
        }
        return fallback;
    }

    private static object? Indent(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 3, "width", "first", "blank");
        var width = a.Get(0, "width", 4L);
        // A negative width indents by nothing (Python's ' ' * -1 is ''); a width past the repeat cap is refused
        // rather than allocated (a long cast to int would otherwise wrap).
        long spaces = width is string ? 0 : Math.Max(0, JinjaValue.ToLong(width));
        if (spaces > JinjaOperators.MaxRepeatLength)
            throw new JinjaError($"indent filter: width {spaces} is over the limit of {JinjaOperators.MaxRepeatLength}");
        string indention = width as string ?? new string(' ', (int)spaces);
        bool first = JinjaValue.IsTrue(a.Get(1, "first", false)), blank = JinjaValue.IsTrue(a.Get(2, "blank", false));
        var text = JinjaValue.ToStr(v) + "\n";
        var lines = text.ReplaceLineEndings("\n").Split('\n').ToList();
        lines.RemoveAt(lines.Count - 1);
        if ((long)indention.Length * lines.Count > JinjaOperators.MaxRepeatLength)
            throw new JinjaError($"indent filter: {lines.Count} lines × width {indention.Length} is over the limit " +
                                 $"of {JinjaOperators.MaxRepeatLength} characters");
        string result;
        if (blank) result = string.Join("\n" + indention, lines);
        else
        {
            result = lines[0];
            if (lines.Count > 1)
                result += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indention + l : l));
        }
        return first ? indention + result : result;
    }

    private static object? Join(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 2, "d", "attribute");
        var separator = JinjaValue.ToStr(a.Get(0, "d", ""));
        var items = JinjaValue.Iterate(v);
        if (a.Get(1, "attribute") is { } attribute and not JinjaUndefined)
            items = items.Select(i => Attribute(i, attribute)).ToList();
        return string.Join(separator, items.Select(JinjaValue.ToStr));
    }

    /// <summary>jinja2's attribute paths: "a.b.0" looks up a, then b, then index 0.</summary>
    private static object? Attribute(object? item, object? path)
    {
        if (JinjaValue.IsInteger(path)) return JinjaOperators.GetItem(item, path);
        foreach (var part in JinjaValue.ToStr(path).Split('.'))
            item = long.TryParse(part, out var i) ? JinjaOperators.GetItem(item, i) : JinjaOperators.GetItem(item,
                part);
        return item;
    }

    private static object? Round(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 2, "precision", "method");
        int precision = (int)JinjaValue.ToLong(a.Get(0, "precision", 0L));
        var method = JinjaValue.ToStr(a.Get(1, "method", "common"));
        double x = JinjaValue.ToDouble(v), scale = Math.Pow(10, precision);
        return method switch
        {
            "common" => Math.Round(x, precision, MidpointRounding.ToEven),
            "floor" => Math.Floor(x * scale) / scale,
            "ceil" => Math.Ceiling(x * scale) / scale,
            _ => throw new JinjaError("round: method must be 'common', 'ceil' or 'floor'"),
        };
    }

    private static object? Map(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        var items = JinjaValue.Iterate(v);
        if (a.Named.TryGetValue("attribute", out var attribute))
        {
            bool hasDefault = a.Named.TryGetValue("default", out var fallback);
            return items.Select(i => Attribute(i, attribute) is var x && x is JinjaUndefined && hasDefault ? fallback
                : x).ToList();
        }
        if (a.Positional.Count == 0) throw new JinjaError("map: give a filter name or attribute=...");
        var filterName = JinjaValue.ToStr(a.Positional[0]);
        var filter = Find(filterName) ?? throw new JinjaError($"map: unknown filter '{filterName}'");
        var rest = new JinjaArguments(a.Positional.Skip(1).ToList(), a.Named);
        return items.Select(i => filter(c, i, rest, filterName)).ToList();
    }

    private static object? Select(JinjaContext c, object? v, JinjaArguments a, bool keep, bool byAttribute)
    {
        int first = byAttribute ? 1 : 0;
        if (byAttribute && a.Positional.Count == 0) throw new JinjaError(
            "selectattr/rejectattr need an attribute name");
        Func<object?, bool> test = x => JinjaValue.IsTrue(x);
        if (a.Positional.Count > first)
        {
            var testName = JinjaValue.ToStr(a.Positional[first]);
            var t = JinjaTests.Find(testName) ?? throw new JinjaError($"unknown test '{testName}'");
            var rest = new JinjaArguments(a.Positional.Skip(first + 1).ToList(), a.Named);
            test = x => t(x, rest);
        }
        return JinjaValue.Iterate(v).Where(i => test(byAttribute ? Attribute(i, a.Positional[0]) : i) == keep).ToList();
    }

    private static object? SortKey(object? item, object? attribute, bool caseSensitive)
    {
        var key = attribute is null or JinjaUndefined ? item : Attribute(item, attribute);
        return !caseSensitive && key is string s ? s.ToLowerInvariant() : key;
    }

    private static object? Sort(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 3, "reverse", "case_sensitive", "attribute");
        bool reverse = JinjaValue.IsTrue(a.Get(0, "reverse", false));
        bool caseSensitive = JinjaValue.IsTrue(a.Get(1, "case_sensitive", false));
        var attribute = a.Get(2, "attribute");
        var items = JinjaValue.Iterate(v);
        // A stable sort, as Python's.
        var sorted = items.Select((x, i) => (x, i)).ToList();
        sorted.Sort((p, q) =>
        {
            int r = JinjaValue.Compare(SortKey(p.x, attribute, caseSensitive), SortKey(q.x, attribute, caseSensitive));
            return r != 0 ? (reverse ? -r : r) : p.i.CompareTo(q.i);
        });
        return sorted.Select(p => p.x).ToList();
    }

    private static object? Unique(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 2, "case_sensitive", "attribute");
        bool caseSensitive = JinjaValue.IsTrue(a.Get(0, "case_sensitive", false));
        var attribute = a.Get(1, "attribute");
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (var item in JinjaValue.Iterate(v))
        {
            var key = SortKey(item, attribute, caseSensitive);
            if (seen.Any(s => JinjaValue.Equals(s, key))) continue;
            seen.Add(key);
            result.Add(item);
        }
        return result;
    }

    private static object? Extreme(object? v, JinjaArguments a, int sign)
    {
        a.Check(sign > 0 ? "max" : "min", 2, "case_sensitive", "attribute");
        bool caseSensitive = JinjaValue.IsTrue(a.Get(0, "case_sensitive", false));
        var attribute = a.Get(1, "attribute");
        var items = JinjaValue.Iterate(v);
        if (items.Count == 0) return new JinjaUndefined("the min/max of an empty sequence");
        var best = items[0];
        foreach (var item in items.Skip(1))
            if (sign * JinjaValue.Compare(SortKey(item, attribute, caseSensitive), SortKey(best, attribute,
                caseSensitive)) > 0)
                best = item;
        return best;
    }

    private static object? Sum(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 2, "attribute", "start");
        var attribute = a.Get(0, "attribute");
        object? total = a.Get(1, "start", 0L);
        foreach (var item in JinjaValue.Iterate(v))
            total = JinjaOperators.Binary("+", total, attribute is null or JinjaUndefined ? item : Attribute(item,
                attribute));
        return total;
    }

    private static object? ToJson(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 4, "indent", "ensure_ascii", "separators", "sort_keys");
        var indent = a.Get(0, "indent");
        if (JinjaValue.IsTrue(a.Named.GetValueOrDefault("ensure_ascii")))
            throw new JinjaError("tojson: ensure_ascii=True is not supported");
        string? itemSep = null, keySep = null;
        if (a.Named.GetValueOrDefault("separators") is IList<object?> { Count: 2 } seps)
        {
            itemSep = JinjaValue.ToStr(seps[0]);
            keySep = JinjaValue.ToStr(seps[1]);
        }
        int? width = indent is null or JinjaUndefined ? null : (int)JinjaValue.ToLong(indent);
        return JinjaJson.Serialize(v, width, itemSep, keySep,
            JinjaValue.IsTrue(a.Named.GetValueOrDefault("sort_keys")));
    }

    private static object? DictSort(JinjaContext c, object? v, JinjaArguments a, string name)
    {
        a.Check(name, 3, "case_sensitive", "by", "reverse");
        if (v is not OrderedDictionary<object, object?> d)
            throw new JinjaError($"dictsort needs a dict, got {JinjaValue.TypeName(v)}");
        bool caseSensitive = JinjaValue.IsTrue(a.Get(0, "case_sensitive", false));
        bool byValue = JinjaValue.ToStr(a.Get(1, "by", "key")) == "value";
        bool reverse = JinjaValue.IsTrue(a.Get(2, "reverse", false));
        var pairs = d.ToList();
        pairs.Sort((p, q) =>
        {
            int r = JinjaValue.Compare(SortKey(byValue ? p.Value : p.Key, null, caseSensitive),
                SortKey(byValue ? q.Value : q.Key, null, caseSensitive));
            return reverse ? -r : r;
        });
        return pairs.Select(p => (object?)new object?[] { p.Key, p.Value }).ToList();
    }

    internal static string Describe() => new StringBuilder().AppendJoin(", ", Names.Order()).ToString();
}
