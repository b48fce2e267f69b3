using System.Globalization;
using System.Text;

namespace NativeReasoner.RL.Chat;

// Template values mirror the Python objects jinja2 works on:
//   None → null, Undefined → JinjaUndefined, bool, int → long, float → double, str → string,
//   list → List<object?>, tuple → object?[], dict → OrderedDictionary<object, object?> (insertion order, as Python),
//   namespace() → JinjaNamespace, callables (globals, macros, bound methods) → JinjaFunction, loop → JinjaLoop.

/// <summary>A name or attribute that does not exist: falsy, prints as "", iterates as empty; operations on it
/// fail.</summary>
public sealed class JinjaUndefined
{
    /// <summary>What was looked up, for the error message ("'tools' is undefined").</summary>
    public string Hint { get; }

    public JinjaUndefined(string hint) => Hint = hint;

    internal JinjaError Fail() => new($"{Hint} is undefined");
}

/// <summary><c>namespace(...)</c>: the one mutable object templates get (attributes set across loop scopes).</summary>
public sealed class JinjaNamespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>Positional and keyword arguments of a call.</summary>
public sealed record JinjaArguments(IReadOnlyList<object?> Positional, IReadOnlyDictionary<string, object?> Named)
{
    public static JinjaArguments Empty { get; } = new([], new Dictionary<string, object?>());

    /// <summary>
    /// The argument at <paramref name="index"/> or named <paramref name="name"/>, else <paramref name="fallback"/>.
    /// </summary>
    public object? Get(int index, string name, object? fallback = null)
    {
        if (index < Positional.Count) return Positional[index];
        return Named.TryGetValue(name, out var v) ? v : fallback;
    }

    /// <summary>Rejects more positional arguments than <paramref name="max"/> and unknown keywords.</summary>
    public void Check(string function, int max, params string[] names)
    {
        if (Positional.Count > max)
            throw new JinjaError($"{function}() takes at most {max} positional argument(s), got {Positional.Count}");
        foreach (var k in Named.Keys)
            if (Array.IndexOf(names, k) < 0)
                throw new JinjaError($"{function}() got an unexpected keyword argument '{k}'");
    }
}

/// <summary>A callable value: a global function, a macro or a bound method such as <c>'a b'.split</c>.</summary>
public sealed class JinjaFunction(string name, Func<JinjaArguments, object?> invoke)
{
    public string Name { get; } = name;

    public object? Invoke(JinjaArguments arguments) => invoke(arguments);
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
public sealed class JinjaLoop(IReadOnlyList<object?> items)
{
    public int Index0 { get; set; }

    public object? Attribute(string name) => name switch
    {
        "index0" => (long)Index0,
        "index" => (long)Index0 + 1,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : new JinjaUndefined("'loop.previtem'"),
        "nextitem" => Index0 < items.Count - 1 ? items[Index0 + 1] : new JinjaUndefined("'loop.nextitem'"),
        "cycle" => new JinjaFunction("loop.cycle", a =>
        {
            if (a.Positional.Count == 0) throw new JinjaError("loop.cycle() needs at least one value");
            return a.Positional[Index0 % a.Positional.Count];
        }),
        _ => new JinjaUndefined($"'loop.{name}'"),
    };
}

/// <summary>Python semantics of template values: truth, str(), repr(), ==, &lt;, len(), iteration.</summary>
public static class JinjaValue
{
    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        JinjaUndefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        OrderedDictionary<object, object?> => "dict",
        JinjaNamespace => "Namespace",
        JinjaFunction => "function",
        JinjaLoop => "LoopContext",
        _ => v.GetType().Name,
    };

    public static bool IsTrue(object? v) => v switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        IList<object?> l => l.Count > 0,
        OrderedDictionary<object, object?> d => d.Count > 0,
        _ => true,
    };

    /// <summary>Python's str(): what <c>{{ value }}</c> prints.</summary>
    public static string ToStr(object? v) => v switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => Repr(v),
    };

    /// <summary>Python's repr() (used for items inside printed lists and dicts).</summary>
    public static string Repr(object? v)
    {
        switch (v)
        {
            case null: return "None";
            case JinjaUndefined: return "";
            case bool b: return b ? "True" : "False";
            case long l: return l.ToString(CultureInfo.InvariantCulture);
            case double d: return FloatRepr(d);
            case string s: return StringRepr(s);
            case List<object?> list: return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case object?[] tuple:
                return tuple.Length == 1 ? "(" + Repr(tuple[0]) + ",)" : "(" + string.Join(", ", tuple.Select(Repr))
                    + ")";
            case OrderedDictionary<object, object?> dict:
                return "{" + string.Join(", ", dict.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}";
            case JinjaNamespace ns:
                return "<Namespace " + string.Join(", ", ns.Attributes.Select(kv => kv.Key + "=" + Repr(kv.Value)))
                    + ">";
            case JinjaFunction f: return $"<function {f.Name}>";
            default: return v.ToString() ?? "";
        }
    }

    /// <summary>
    /// Python's float repr: the shortest digits that round-trip, fixed notation for decimal exponents in [-4, 16)
    /// ("0.0001", "1e-05", "1e+16"), and ".0" on integral values.
    /// </summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOfAny(['E', 'e']);
        string mantissa = e >= 0 ? r[..e] : r;
        int exponent = e >= 0 ? int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture) : 0;
        int dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        string whole = dot >= 0 ? mantissa[..dot] : mantissa;
        string digits = whole + (dot >= 0 ? mantissa[(dot + 1)..] : "");
        int point = whole.Length + exponent;
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') lead++;
        digits = digits[lead..].TrimEnd('0');
        point -= lead;
        if (digits.Length == 0) { digits = "0"; point = 1; }
        int x = point - 1;
        string body;
        if (x >= -4 && x < 16)
        {
            if (point <= 0) body = "0." + new string('0', -point) + digits;
            else if (point >= digits.Length) body = digits + new string('0', point - digits.Length) + ".0";
            else body = digits[..point] + "." + digits[point..];
        }
        else
        {
            body = digits[..1] + (digits.Length > 1 ? "." + digits[1..] : "") + "e" + (x < 0 ? "-" : "+")
                + Math.Abs(x).ToString("00", CultureInfo.InvariantCulture);
        }
        return (double.IsNegative(d) ? "-" : "") + body;
    }

    private static string StringRepr(string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"'
            : '\'';
        var sb = new StringBuilder().Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2",
                        CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>Python ==: numbers by value (True == 1), sequences and dicts element-wise.</summary>
    public static new bool Equals(object? a, object? b)
    {
        if (a is JinjaUndefined || b is JinjaUndefined) return a is JinjaUndefined && b is JinjaUndefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        switch (a)
        {
            case string sa: return b is string sb && string.Equals(sa, sb, StringComparison.Ordinal);
            case List<object?> la: return b is List<object?> lb && SequenceEquals(la, lb);
            case object?[] ta: return b is object?[] tb && SequenceEquals(ta, tb);
            case OrderedDictionary<object, object?> da:
                if (b is not OrderedDictionary<object, object?> db || da.Count != db.Count) return false;
                foreach (var kv in da)
                    if (!db.TryGetValue(kv.Key, out var other) || !Equals(kv.Value, other)) return false;
                return true;
            default: return ReferenceEquals(a, b);
        }
    }

    private static bool SequenceEquals(IList<object?> a, IList<object?> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++)
            if (!Equals(a[i], b[i])) return false;
        return true;
    }

    /// <summary>Python ordering (&lt;, &gt;, sort): numbers, strings by code point, sequences
    /// lexicographically.</summary>
    public static int Compare(object? a, object? b)
    {
        if (a is JinjaUndefined u) throw u.Fail();
        if (b is JinjaUndefined u2) throw u2.Fail();
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a).CompareTo(ToDouble(b)) : ToLong(a).CompareTo(ToLong(b));
        if (a is string sa && b is string sb) return CompareCodePoints(sa, sb);
        if (a is IList<object?> la && b is IList<object?> lb && a.GetType() == b.GetType())
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (Equals(la[i], lb[i])) continue;
                return Compare(la[i], lb[i]);
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new JinjaError($"'<' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    private static int CompareCodePoints(string a, string b)
    {
        var ea = a.EnumerateRunes();
        var eb = b.EnumerateRunes();
        while (true)
        {
            bool ha = ea.MoveNext(), hb = eb.MoveNext();
            if (!ha || !hb) return ha.CompareTo(hb);
            int c = ea.Current.Value.CompareTo(eb.Current.Value);
            if (c != 0) return c;
        }
    }

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static bool IsInteger(object? v) => v is long or bool;

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new JinjaError($"expected a number, got {TypeName(v)}"),
    };

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => d,
        _ => throw new JinjaError($"expected a number, got {TypeName(v)}"),
    };

    /// <summary>len(): code points of a string (as Python counts), items of a list or dict; Undefined has length
    /// 0.</summary>
    public static long Length(object? v) => v switch
    {
        string s => CodePoints(s).Length,
        IList<object?> l => l.Count,
        OrderedDictionary<object, object?> d => d.Count,
        JinjaUndefined => 0,
        _ => throw new JinjaError($"object of type '{TypeName(v)}' has no len()"),
    };

    /// <summary>Iterates as Python does: items of a list, keys of a dict, characters of a string; Undefined is
    /// empty.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        IList<object?> l => [.. l],
        OrderedDictionary<object, object?> d => [.. d.Keys],
        string s => [.. CodePoints(s)],
        JinjaUndefined => [],
        _ => throw new JinjaError($"'{TypeName(v)}' object is not iterable"),
    };

    /// <summary>The string as Python characters (code points; a surrogate pair is one).</summary>
    public static string[] CodePoints(string s)
    {
        var result = new List<string>(s.Length);
        foreach (var r in s.EnumerateRunes()) result.Add(r.ToString());
        return [.. result];
    }

    public static OrderedDictionary<object, object?> NewDict() => new(KeyComparer.Instance);

    /// <summary>Dictionary keys hash and compare as Python's do (1 and 1.0 are the same key).</summary>
    private sealed class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();

        public new bool Equals(object? x, object? y) => JinjaValue.Equals(x, y);

        public int GetHashCode(object obj) => obj switch
        {
            long or bool or double when IsNumber(obj) && ToDouble(obj) == Math.Floor(ToDouble(obj)) =>
                ToLong(obj).GetHashCode(),
            double d => d.GetHashCode(),
            string s => StringComparer.Ordinal.GetHashCode(s),
            _ => obj.GetHashCode(),
        };
    }
}
