using System.Text;

namespace NativeReasoner.RL.Chat;

/// <summary>How a statement list ended: normally, or by <c>{% break %}</c> / <c>{% continue %}</c>.</summary>
internal enum Flow { Normal, Break, Continue }

/// <summary>A statement node; evaluation errors get the node's template line.</summary>
internal abstract class Stmt(int line)
{
    public int Line { get; } = line;

    public Flow Render(JinjaContext context, StringBuilder output)
    {
        try
        {
            return RenderCore(context, output);
        }
        catch (JinjaError e)
        {
            throw new TemplateException(Line, e.Message);
        }
    }

    protected abstract Flow RenderCore(JinjaContext context, StringBuilder output);

    public static Flow RenderAll(IReadOnlyList<Stmt> body, JinjaContext context, StringBuilder output)
    {
        foreach (var s in body)
        {
            var flow = s.Render(context, output);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }
}

internal sealed class TextStmt(int line, string text) : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output)
    {
        output.Append(text);
        return Flow.Normal;
    }
}

/// <summary><c>{{ expr }}</c>: Python's str() of the value; Undefined prints nothing.</summary>
internal sealed class OutputStmt(int line, Expr value) : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output)
    {
        output.Append(JinjaValue.ToStr(value.Evaluate(context)));
        return Flow.Normal;
    }
}

internal sealed class IfStmt(int line, IReadOnlyList<(Expr Condition, IReadOnlyList<Stmt> Body)> branches,
    IReadOnlyList<Stmt> otherwise)
    : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output)
    {
        foreach (var (condition, body) in branches)
            if (JinjaValue.IsTrue(condition.Evaluate(context))) return RenderAll(body, context, output);
        return RenderAll(otherwise, context, output);
    }
}

/// <summary>
/// <c>{% for a[, b] in items [if cond] %}…{% else %}…{% endfor %}</c>: the <c>if</c> filters before counting, so
/// <c>loop.length</c>/<c>loop.last</c> see only kept items; each iteration has its own scope.
/// </summary>
internal sealed class ForStmt(int line, IReadOnlyList<string> targets, Expr items, Expr? filter,
    IReadOnlyList<Stmt> body,
    IReadOnlyList<Stmt> otherwise) : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output)
    {
        var source = items.Evaluate(context);
        if (source is null) throw new JinjaError("'NoneType' object is not iterable");
        var all = JinjaValue.Iterate(source);
        List<object?> kept = all;
        if (filter != null)
        {
            kept = [];
            foreach (var item in all)
            {
                context.Push();
                try
                {
                    Bind(context, item);
                    if (JinjaValue.IsTrue(filter.Evaluate(context))) kept.Add(item);
                }
                finally { context.Pop(); }
            }
        }
        if (kept.Count == 0) return RenderAll(otherwise, context, output);
        var loop = new JinjaLoop(kept);
        for (int i = 0; i < kept.Count; i++)
        {
            loop.Index0 = i;
            context.Push();
            try
            {
                Bind(context, kept[i]);
                context.Set("loop", loop);
                if (RenderAll(body, context, output) == Flow.Break) break;
            }
            finally { context.Pop(); }
        }
        return Flow.Normal;
    }

    private void Bind(JinjaContext context, object? item) => SetStmt.Unpack(context, targets, item);
}

internal sealed class BreakStmt(int line, Flow flow) : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output) => flow;
}

/// <summary><c>{% set x = … %}</c>, <c>{% set a, b = … %}</c> or <c>{% set ns.attr = … %}</c> (namespace objects
/// only).</summary>
internal sealed class SetStmt(int line, IReadOnlyList<string> targets, string? attribute, Expr value) : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output)
    {
        var v = value.Evaluate(context);
        if (attribute != null)
        {
            var target = context.Lookup(targets[0]);
            if (target is not JinjaNamespace ns)
                throw new JinjaError(
                    $"cannot assign attribute '{attribute}' on '{targets[0]}' ({JinjaValue.TypeName(target)}): " +
                    "only namespace() objects take attributes");
            ns.Attributes[attribute] = v;
        }
        else Unpack(context, targets, v);
        return Flow.Normal;
    }

    public static void Unpack(JinjaContext context, IReadOnlyList<string> targets, object? value)
    {
        if (targets.Count == 1)
        {
            context.Set(targets[0], value);
            return;
        }
        var items = JinjaValue.Iterate(value);
        if (items.Count != targets.Count)
            throw new JinjaError(
                $"cannot unpack {items.Count} value(s) into {targets.Count} names ({string.Join(", ", targets)})");
        for (int i = 0; i < targets.Count; i++) context.Set(targets[i], items[i]);
    }
}

/// <summary><c>{% set x %}…{% endset %}</c>: the rendered body as a string.</summary>
internal sealed class SetBlockStmt(int line, string target, IReadOnlyList<Stmt> body) : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output)
    {
        var sb = new StringBuilder();
        RenderAll(body, context, sb);
        context.Set(target, sb.ToString());
        return Flow.Normal;
    }
}

/// <summary><c>{% macro name(a, b=default) %}…{% endmacro %}</c>: a function returning its rendered body.</summary>
internal sealed class MacroStmt(int line, string name, IReadOnlyList<(string Name, Expr? Default)> parameters,
    IReadOnlyList<Stmt> body)
    : Stmt(line)
{
    protected override Flow RenderCore(JinjaContext context, StringBuilder output)
    {
        var scopes = context.Frames.ToList();
        context.Set(name, new JinjaFunction(name, arguments =>
        {
            if (arguments.Positional.Count > parameters.Count)
                throw new JinjaError(
                    $"macro '{name}' takes {parameters.Count} argument(s), got {arguments.Positional.Count}");
            var call = new JinjaContext(scopes);
            call.Push();
            for (int i = 0; i < parameters.Count; i++)
            {
                var (p, fallback) = parameters[i];
                object? v = i < arguments.Positional.Count ? arguments.Positional[i]
                    : arguments.Named.TryGetValue(p, out var named) ? named
                    : fallback != null ? fallback.Evaluate(call) : new JinjaUndefined($"'{p}'");
                call.Set(p, v);
            }
            foreach (var k in arguments.Named.Keys)
                if (!parameters.Any(p => p.Name == k)) throw new JinjaError($"macro '{name}' has no parameter '{k}'");
            var sb = new StringBuilder();
            RenderAll(body, call, sb);
            return sb.ToString();
        }));
        return Flow.Normal;
    }
}
