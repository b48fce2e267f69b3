namespace NativeReasoner.RL.Chat;

/// <summary>The <c>is</c> tests of jinja2 that chat templates use, with jinja2's semantics.</summary>
internal static class JinjaTests
{
    public delegate bool Test(object? value, JinjaArguments arguments);

    private static object? Arg(JinjaArguments a, string test) =>
        a.Positional.Count > 0 ? a.Positional[0] : throw new JinjaError($"test '{test}' needs an argument");

    private static readonly Dictionary<string, Test> Registry = new(StringComparer.Ordinal)
    {
        ["defined"] = (v, _) => v is not JinjaUndefined,
        ["undefined"] = (v, _) => v is JinjaUndefined,
        ["none"] = (v, _) => v is null,
        ["boolean"] = (v, _) => v is bool,
        ["true"] = (v, _) => v is true,
        ["false"] = (v, _) => v is false,
        ["integer"] = (v, _) => v is long,
        ["float"] = (v, _) => v is double,
        ["number"] = (v, _) => JinjaValue.IsNumber(v),
        ["string"] = (v, _) => v is string,
        ["mapping"] = (v, _) => v is OrderedDictionary<object, object?>,
        // As in jinja2, Undefined iterates (empty) and has a length, so it is iterable and a sequence.
        ["iterable"] = (v, _) => v is string or IList<object?> or OrderedDictionary<object, object?> or JinjaUndefined,
        ["sequence"] = (v, _) => v is string or IList<object?> or OrderedDictionary<object, object?> or JinjaUndefined,
        ["callable"] = (v, _) => v is JinjaFunction,
        ["even"] = (v, _) => JinjaValue.ToLong(v) % 2 == 0,
        ["odd"] = (v, _) => JinjaValue.ToLong(v) % 2 != 0,
        ["divisibleby"] = (v, a) => JinjaValue.ToLong(v) % JinjaValue.ToLong(Arg(a, "divisibleby")) == 0,
        ["eq"] = (v, a) => JinjaValue.Equals(v, Arg(a, "eq")),
        ["equalto"] = (v, a) => JinjaValue.Equals(v, Arg(a, "equalto")),
        ["=="] = (v, a) => JinjaValue.Equals(v, Arg(a, "==")),
        ["ne"] = (v, a) => !JinjaValue.Equals(v, Arg(a, "ne")),
        ["!="] = (v, a) => !JinjaValue.Equals(v, Arg(a, "!=")),
        ["lt"] = (v, a) => JinjaValue.Compare(v, Arg(a, "lt")) < 0,
        ["<"] = (v, a) => JinjaValue.Compare(v, Arg(a, "<")) < 0,
        ["le"] = (v, a) => JinjaValue.Compare(v, Arg(a, "le")) <= 0,
        ["<="] = (v, a) => JinjaValue.Compare(v, Arg(a, "<=")) <= 0,
        ["gt"] = (v, a) => JinjaValue.Compare(v, Arg(a, "gt")) > 0,
        [">"] = (v, a) => JinjaValue.Compare(v, Arg(a, ">")) > 0,
        ["ge"] = (v, a) => JinjaValue.Compare(v, Arg(a, "ge")) >= 0,
        [">="] = (v, a) => JinjaValue.Compare(v, Arg(a, ">=")) >= 0,
        ["in"] = (v, a) => JinjaOperators.Contains(Arg(a, "in"), v),
        ["lower"] = (v, _) => JinjaValue.ToStr(v) is var s && s.Any(char.IsLetter) && !s.Any(char.IsUpper),
        ["upper"] = (v, _) => JinjaValue.ToStr(v) is var s && s.Any(char.IsLetter) && !s.Any(char.IsLower),
        ["sameas"] = (v, a) => Arg(a, "sameas") is var o && (v is null ? o is null
            : v is bool b ? o is bool ob && b == ob
            : v is long l && o is long ol ? l == ol && l is >= -5 and <= 256
            : ReferenceEquals(v, o)),
    };

    public static Test? Find(string name) => Registry.GetValueOrDefault(name);

    public static IEnumerable<string> Names => Registry.Keys;
}
