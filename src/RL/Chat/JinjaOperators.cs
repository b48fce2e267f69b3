namespace NativeReasoner.RL.Chat;

/// <summary>Attribute and item access, slicing, arithmetic and comparison with Python's (and jinja2's) rules.</summary>
internal static class JinjaOperators
{
    /// <summary><c>obj.name</c>: methods and attributes first, then dict keys; missing → Undefined.</summary>
    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case JinjaUndefined u: throw u.Fail();
            case string s: return (object?)JinjaMethods.StringMethod(s, name) ?? Missing(target, name);
            case OrderedDictionary<object, object?> d:
                return (object?)JinjaMethods.DictMethod(d, name) ?? (d.TryGetValue(name, out var v) ? v
                    : Missing(target, name));
            case JinjaNamespace ns: return ns.Attributes.TryGetValue(name, out var a) ? a : Missing(target, name);
            case JinjaLoop loop: return loop.Attribute(name);
            default: return Missing(target, name);
        }
    }

    /// <summary><c>obj[key]</c>: list index (negative from the end) or dict key, then attribute; missing →
    /// Undefined.</summary>
    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case JinjaUndefined u: throw u.Fail();
            case OrderedDictionary<object, object?> d:
                if (key != null && key is not JinjaUndefined && d.TryGetValue(key, out var v)) return v;
                break;
            case IList<object?> list when JinjaValue.IsInteger(key):
                {
                    long i = JinjaValue.ToLong(key);
                    if (i < 0) i += list.Count;
                    return i >= 0 && i < list.Count ? list[(int)i]
                        : new JinjaUndefined(
                            $"index {JinjaValue.ToLong(key)} of a {JinjaValue.TypeName(target)} of length {list.Count}");
                }
            case string s when JinjaValue.IsInteger(key):
                {
                    var chars = JinjaValue.CodePoints(s);
                    long i = JinjaValue.ToLong(key);
                    if (i < 0) i += chars.Length;
                    return i >= 0 && i < chars.Length ? chars[i]
                        : new JinjaUndefined($"index {JinjaValue.ToLong(key)} of a str of length {chars.Length}");
                }
        }
        if (key is string name && target is not OrderedDictionary<object, object?>) return GetAttribute(target, name);
        return new JinjaUndefined($"'{JinjaValue.TypeName(target)} object' has no item {JinjaValue.Repr(key)}, so it");
    }

    private static JinjaUndefined Missing(object? target, string name) =>
        new($"'{JinjaValue.TypeName(target)} object' has no attribute '{name}', so it");

    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        if (target is JinjaUndefined u) throw u.Fail();
        long? Bound(object? v, string what) => v is null or JinjaUndefined ? null
            : JinjaValue.IsInteger(v) ? JinjaValue.ToLong(v)
            : throw new JinjaError($"slice {what} must be an integer or None, got {JinjaValue.TypeName(v)}");
        long st = Bound(step, "step") ?? 1;
        if (st == 0) throw new JinjaError("slice step cannot be zero");
        IReadOnlyList<object?> items = target switch
        {
            string s => JinjaValue.CodePoints(s),
            IList<object?> l => l.ToList(),
            _ => throw new JinjaError($"'{JinjaValue.TypeName(target)}' object is not subscriptable"),
        };
        long n = items.Count;
        long Clamp(long? v, long fallback)
        {
            if (v == null) return fallback;
            long x = v.Value < 0 ? v.Value + n : v.Value;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long from = Clamp(Bound(start, "start"), st > 0 ? 0 : n - 1);
        long to = Clamp(Bound(stop, "stop"), st > 0 ? n : -1);
        var picked = new List<object?>();
        for (long i = from; st > 0 ? i < to : i > to; i += st) picked.Add(items[(int)i]);
        return target switch
        {
            string => string.Concat(picked.Cast<string>()),
            object?[] => picked.ToArray(),
            _ => picked,
        };
    }

    public static object? Negate(object? v) => v switch
    {
        JinjaUndefined u => throw u.Fail(),
        double d => (object)-d,
        long or bool => (object)(-JinjaValue.ToLong(v)),
        _ => throw new JinjaError($"bad operand type for unary -: '{JinjaValue.TypeName(v)}'"),
    };

    public static object? Plus(object? v) => v switch
    {
        JinjaUndefined u => throw u.Fail(),
        double or long => v,
        bool => JinjaValue.ToLong(v),
        _ => throw new JinjaError($"bad operand type for unary +: '{JinjaValue.TypeName(v)}'"),
    };

    public static object? Binary(string op, object? l, object? r)
    {
        if (op == "~") return JinjaValue.ToStr(l) + JinjaValue.ToStr(r);
        if (l is JinjaUndefined ul) throw ul.Fail();
        if (r is JinjaUndefined ur) throw ur.Fail();
        if (JinjaValue.IsNumber(l) && JinjaValue.IsNumber(r)) return Arithmetic(op, l!, r!);
        switch (op)
        {
            case "+" when l is string a && r is string b: return a + b;
            case "+" when l is List<object?> a && r is List<object?> b: return new List<object?>([.. a, .. b]);
            case "+" when l is object?[] a && r is object?[] b: return (object?[])[.. a, .. b];
            case "*" when l is string or IList<object?> && JinjaValue.IsInteger(r):
                return Repeat(l, JinjaValue.ToLong(r));
            case "*" when r is string or IList<object?> && JinjaValue.IsInteger(l):
                return Repeat(r, JinjaValue.ToLong(l));
            case "%" when l is string:
                throw new JinjaError(
                "printf-style string formatting ('%' on a string) is not supported; use '~' or '+'");
        }
        throw new JinjaError(
            $"unsupported operand type(s) for {op}: '{JinjaValue.TypeName(l)}' and '{JinjaValue.TypeName(r)}'");
    }

    /// <summary>The most characters or items a repetition (<c>'x' * n</c>) may make: a template that asks for more
    /// is refused instead of exhausting memory.</summary>
    public const long MaxRepeatLength = 1 << 24;

    private static object Repeat(object? seq, long times)
    {
        long unit = seq is string str ? str.Length : ((IList<object?>)seq!).Count;
        if (times > 0 && unit > 0 && times > MaxRepeatLength / unit)
            throw new JinjaError($"repetition too big: {unit} × {times} is more than {MaxRepeatLength} " +
                                 $"{(seq is string ? "characters" : "items")} (sandbox limit)");
        if (seq is string s) return times <= 0 ? "" : string.Concat(Enumerable.Repeat(s, (int)times));
        var list = (IList<object?>)seq!;
        var result = new List<object?>();
        for (long i = 0; i < times; i++) result.AddRange(list);
        return seq is object?[]? result.ToArray() : result;
    }

    private static object Arithmetic(string op, object l, object r)
    {
        bool ints = JinjaValue.IsInteger(l) && JinjaValue.IsInteger(r);
        if (ints)
        {
            long a = JinjaValue.ToLong(l), b = JinjaValue.ToLong(r);
            // Python's integers are unbounded; here they are 64-bit, and a result beyond that is an error rather
            // than a wrapped-around number.
            try
            {
                checked
                {
                    switch (op)
                    {
                        case "+": return a + b;
                        case "-": return a - b;
                        case "*": return a * b;
                        case "/": if (b == 0) throw new JinjaError("division by zero"); return (double)a / b;
                        case "//":
                            if (b == 0) throw new JinjaError("integer division or modulo by zero");
                            return FloorDiv(a, b);
                        case "%":
                            if (b == 0) throw new JinjaError("integer division or modulo by zero");
                            return a - b * FloorDiv(a, b);
                        case "**":
                            if (b < 0) return Math.Pow(a, b);
                            // Squaring: at most 63 steps, where a loop of b multiplications could run for ever.
                            long p = 1, factor = a;
                            for (long e = b; e > 0; e >>= 1)
                            {
                                if ((e & 1) != 0) p *= factor;
                                if (e > 1) factor *= factor;
                            }
                            return p;
                    }
                }
            }
            catch (OverflowException)
            {
                throw new JinjaError($"integer overflow: {a} {op} {b} does not fit in 64 bits");
            }
        }
        double x = JinjaValue.ToDouble(l), y = JinjaValue.ToDouble(r);
        switch (op)
        {
            case "+": return x + y;
            case "-": return x - y;
            case "*": return x * y;
            case "/": if (y == 0) throw new JinjaError("float division by zero"); return x / y;
            case "//": if (y == 0) throw new JinjaError("float floor division by zero"); return Math.Floor(x / y);
            case "%":
                if (y == 0) throw new JinjaError("float modulo");
                double m = x % y;
                return m != 0 && (m < 0) != (y < 0) ? m + y : m;
            case "**": return Math.Pow(x, y);
        }
        throw new JinjaError($"unknown operator '{op}'");
    }

    private static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return (a % b != 0) && ((a < 0) != (b < 0)) ? q - 1 : q;
    }

    public static bool Compare(string op, object? l, object? r) => op switch
    {
        "==" => JinjaValue.Equals(l, r),
        "!=" => !JinjaValue.Equals(l, r),
        "<" => JinjaValue.Compare(l, r) < 0,
        "<=" => JinjaValue.Compare(l, r) <= 0,
        ">" => JinjaValue.Compare(l, r) > 0,
        ">=" => JinjaValue.Compare(l, r) >= 0,
        "in" => Contains(r, l),
        "not in" => !Contains(r, l),
        _ => throw new JinjaError($"unknown comparison '{op}'"),
    };

    public static bool Contains(object? container, object? item)
    {
        switch (container)
        {
            case string s:
                if (item is not string sub)
                    throw new JinjaError(
                        $"'in <string>' requires string as left operand, not {JinjaValue.TypeName(item)}");
                return s.Contains(sub, StringComparison.Ordinal);
            case IList<object?> list: return list.Any(x => JinjaValue.Equals(x, item));
            case OrderedDictionary<object, object?> d:
                return item != null && item is not JinjaUndefined
                && d.ContainsKey(item);
            case JinjaUndefined: return false;
            default: throw new JinjaError($"argument of type '{JinjaValue.TypeName(container)}' is not iterable");
        }
    }
}
