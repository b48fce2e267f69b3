namespace NativeReasoner.RL.Chat;

/// <summary>An expression node; evaluation errors get the node's template line.</summary>
internal abstract class Expr(int line)
{
    public int Line { get; } = line;

    public object? Evaluate(JinjaContext context)
    {
        try
        {
            return EvaluateCore(context);
        }
        catch (JinjaError e)
        {
            throw new TemplateException(Line, e.Message);
        }
        catch (JinjaRaise e)
        {
            throw new TemplateRaisedException(Line, e.Message);
        }
    }

    protected abstract object? EvaluateCore(JinjaContext context);
}

internal sealed class LiteralExpr(int line, object? value) : Expr(line)
{
    public object? Value { get; } = value;

    protected override object? EvaluateCore(JinjaContext context) => Value;
}

internal sealed class NameExpr(int line, string name) : Expr(line)
{
    public string Name { get; } = name;

    protected override object? EvaluateCore(JinjaContext context) => context.Lookup(Name);
}

/// <summary><c>[a, b]</c> (a new list) or <c>(a, b)</c> (a tuple).</summary>
internal sealed class SequenceExpr(int line, IReadOnlyList<Expr> items, bool isTuple) : Expr(line)
{
    public IReadOnlyList<Expr> Items { get; } = items;
    public bool IsTuple { get; } = isTuple;

    protected override object? EvaluateCore(JinjaContext context)
    {
        var values = Items.Select(i => i.Evaluate(context)).ToArray();
        return IsTuple ? values : new List<object?>(values);
    }
}

internal sealed class DictExpr(int line, IReadOnlyList<(Expr Key, Expr Value)> pairs) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context)
    {
        var d = JinjaValue.NewDict();
        foreach (var (k, v) in pairs)
        {
            var key = k.Evaluate(context) ?? throw new JinjaError("None is not supported as a dict key");
            d[key] = v.Evaluate(context);
        }
        return d;
    }
}

/// <summary><c>obj.name</c>: attribute first, then item (jinja's getattr).</summary>
internal sealed class AttributeExpr(int line, Expr target, string name) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context) =>
        JinjaOperators.GetAttribute(target.Evaluate(context), name);
}

/// <summary><c>obj[key]</c>: item first, then attribute (jinja's getitem).</summary>
internal sealed class ItemExpr(int line, Expr target, Expr key) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context) =>
        JinjaOperators.GetItem(target.Evaluate(context), key.Evaluate(context));
}

/// <summary><c>obj[start:stop:step]</c> with Python's slice rules.</summary>
internal sealed class SliceExpr(int line, Expr target, Expr? start, Expr? stop, Expr? step) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context) => JinjaOperators.Slice(
        target.Evaluate(context), start?.Evaluate(context), stop?.Evaluate(context), step?.Evaluate(context));
}

internal sealed record CallArguments(IReadOnlyList<Expr> Positional, IReadOnlyList<(string Name, Expr Value)> Named)
{
    public static CallArguments None { get; } = new([], []);

    public JinjaArguments Evaluate(JinjaContext context, object? first = null, bool hasFirst = false)
    {
        var positional = new List<object?>(Positional.Count + 1);
        if (hasFirst) positional.Add(first);
        foreach (var p in Positional) positional.Add(p.Evaluate(context));
        var named = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (n, v) in Named) named[n] = v.Evaluate(context);
        return new JinjaArguments(positional, named);
    }
}

internal sealed class CallExpr(int line, Expr callee, CallArguments arguments) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context)
    {
        var f = callee.Evaluate(context);
        if (f is JinjaUndefined u) throw new JinjaError(
            $"{u.Hint} is undefined: not a variable, a method or a supported function");
        if (f is not JinjaFunction function) throw new JinjaError($"'{JinjaValue.TypeName(f)}' object is not callable");
        return function.Invoke(arguments.Evaluate(context));
    }
}

/// <summary><c>value | name(args)</c>; the filter is resolved when the template is parsed.</summary>
internal sealed class FilterExpr(int line, Expr value, string name, JinjaFilters.Filter filter,
    CallArguments arguments) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context) =>
        filter(context, value.Evaluate(context), arguments.Evaluate(context), name);
}

/// <summary><c>value is [not] name(args)</c>; the test is resolved when the template is parsed.</summary>
internal sealed class TestExpr(int line, Expr value, JinjaTests.Test test, CallArguments arguments, bool negated)
    : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context) =>
        test(value.Evaluate(context), arguments.Evaluate(context)) != negated;
}

internal sealed class UnaryExpr(int line, string op, Expr operand) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context)
    {
        var v = operand.Evaluate(context);
        return op switch
        {
            "not" => !JinjaValue.IsTrue(v),
            "-" => JinjaOperators.Negate(v),
            _ => JinjaOperators.Plus(v),
        };
    }
}

internal sealed class BinaryExpr(int line, string op, Expr left, Expr right) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context)
    {
        var l = left.Evaluate(context);
        switch (op)
        {
            // and / or return an operand (Python), evaluating the right one only when needed.
            case "and": return JinjaValue.IsTrue(l) ? right.Evaluate(context) : l;
            case "or": return JinjaValue.IsTrue(l) ? l : right.Evaluate(context);
        }
        return JinjaOperators.Binary(op, l, right.Evaluate(context));
    }
}

/// <summary><c>a &lt; b &lt;= c</c>: chained comparisons, as in Python.</summary>
internal sealed class CompareExpr(int line, Expr first, IReadOnlyList<(string Op, Expr Operand)> rest) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context)
    {
        var left = first.Evaluate(context);
        foreach (var (op, operand) in rest)
        {
            var right = operand.Evaluate(context);
            if (!JinjaOperators.Compare(op, left, right)) return false;
            left = right;
        }
        return true;
    }
}

/// <summary><c>a if cond else b</c>; without <c>else</c> a false condition gives Undefined.</summary>
internal sealed class ConditionalExpr(int line, Expr condition, Expr then, Expr? otherwise) : Expr(line)
{
    protected override object? EvaluateCore(JinjaContext context) => JinjaValue.IsTrue(condition.Evaluate(context))
        ? then.Evaluate(context)
        : otherwise != null ? otherwise.Evaluate(context)
            : new JinjaUndefined("the conditional expression's missing else");
}
