using System.Text;

namespace NativeReasoner.RL.Chat;

/// <summary>
/// A parsed Jinja template rendered as Hugging Face renders chat templates: jinja2's
/// <c>ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)</c> with loop controls, the globals
/// <c>raise_exception</c> and <c>strftime_now</c>, HF's <c>tojson</c>, and jinja2's <c>range</c>, <c>dict</c>,
/// <c>namespace</c>. Parse once, render many times; rendering does not change the template.
/// </summary>
public sealed class JinjaTemplate
{
    private const int MaxRange = 100_000;

    private readonly IReadOnlyList<Stmt> _body;

    private JinjaTemplate(IReadOnlyList<Stmt> body) => _body = body;

    /// <summary>Parses <paramref name="source"/>; a syntax error or an unsupported construct throws with its
    /// line.</summary>
    public static JinjaTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new JinjaTemplate(JinjaParser.Parse(source));
    }

    /// <summary>
    /// Renders with <paramref name="variables"/> (template values: see <see cref="JinjaValue"/>;
    /// <see cref="JinjaJson.FromJson"/> converts JSON). <paramref name="now"/> is the clock behind
    /// <c>strftime_now</c> (default: local time).
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? now = null)
    {
        now ??= () => DateTime.Now;
        var globals = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["range"] = new JinjaFunction("range", Range),
            ["namespace"] = new JinjaFunction("namespace", Namespace),
            ["dict"] = new JinjaFunction("dict", a =>
            {
                var d = JinjaValue.NewDict();
                foreach (var kv in a.Named) d[kv.Key] = kv.Value;
                return d;
            }),
            ["raise_exception"] = new JinjaFunction("raise_exception", a =>
                throw new JinjaRaise(JinjaValue.ToStr(a.Get(0, "message")))),
            ["strftime_now"] = new JinjaFunction("strftime_now", a =>
                Strftime.Format(now(), a.Get(0, "format") as string
                    ?? throw new JinjaError("strftime_now(format) needs a format string"))),
        };
        var context = new JinjaContext([globals, new Dictionary<string, object?>(variables, StringComparer.Ordinal)]);
        context.Push();
        var output = new StringBuilder();
        Stmt.RenderAll(_body, context, output);
        return output.ToString();
    }

    private static object Range(JinjaArguments a)
    {
        if (a.Positional.Count is < 1 or > 3 || a.Named.Count > 0)
            throw new JinjaError("range() takes 1 to 3 integer arguments");
        var n = a.Positional.Select(v => JinjaValue.IsInteger(v) ? JinjaValue.ToLong(v)
            : throw new JinjaError($"range() arguments must be integers, got {JinjaValue.TypeName(v)}")).ToArray();
        long start = n.Length == 1 ? 0 : n[0], stop = n.Length == 1 ? n[0] : n[1], step = n.Length == 3 ? n[2] : 1;
        if (step == 0) throw new JinjaError("range() arg 3 must not be zero");
        var result = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (result.Count >= MaxRange) throw new JinjaError(
                $"range too big: more than {MaxRange} items (sandbox limit)");
            result.Add(i);
        }
        return result;
    }

    private static object Namespace(JinjaArguments a)
    {
        var ns = new JinjaNamespace();
        foreach (var p in a.Positional)
        {
            if (p is not OrderedDictionary<object, object?> d)
                throw new JinjaError("namespace() takes a dict or keyword arguments");
            foreach (var kv in d) ns.Attributes[JinjaValue.ToStr(kv.Key)] = kv.Value;
        }
        foreach (var kv in a.Named) ns.Attributes[kv.Key] = kv.Value;
        return ns;
    }
}
