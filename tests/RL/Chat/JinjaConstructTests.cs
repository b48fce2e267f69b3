using System.Text.Json.Nodes;
using NativeReasoner.RL.Chat;
using Xunit;

namespace NativeReasoner.Tests.RL.Chat;

/// <summary>
/// One small template per Jinja construct (whitespace control, loops, scopes, slices, methods, filters, tests,
/// tojson, macros, errors) against jinja2's output (tests/reference/chat_templates.py → constructs.json), and the
/// error messages: each names the construct and the template line.
/// </summary>
public class JinjaConstructTests
{
    public static TheoryData<string> Constructs()
    {
        var data = new TheoryData<string>();
        foreach (var c in Load()) data.Add(c!["name"]!.GetValue<string>());
        return data;
    }

    private static JsonArray Load() =>
        JsonNode.Parse(File.ReadAllText(ChatTemplateGoldenTests.Fixture("constructs.json")))!["cases"]!.AsArray();

    [Theory]
    [MemberData(nameof(Constructs))]
    public void Construct_RendersAsJinja2(string name)
    {
        var c = Load().Single(x => x!["name"]!.GetValue<string>() == name)!;
        var source = c["template"]!.GetValue<string>();
        var variables = ((OrderedDictionary<object, object?>)JinjaJson.FromJson(c["variables"])!)
            .ToDictionary(kv => (string)kv.Key, kv => kv.Value);
        string? expected = c["output"]?.GetValue<string>();
        if (expected == null)
        {
            var e = Assert.ThrowsAny<TemplateException>(() => JinjaTemplate.Parse(source).Render(variables, () =>
                ChatTemplateGoldenTests.FixedNow));
            Assert.Equal(1, e.Line);
            return;
        }
        Assert.Equal(expected, JinjaTemplate.Parse(source).Render(variables, () => ChatTemplateGoldenTests.FixedNow));
    }

    private static string Render(string source, params (string Name, object? Value)[] variables) =>
        JinjaTemplate.Parse(source).Render(variables.ToDictionary(v => v.Name, v => v.Value));

    private static TemplateException Fails(string source, params (string Name, object? Value)[] variables) =>
        Assert.ThrowsAny<TemplateException>(() => Render(source, variables));

    [Fact]
    public void UnsupportedConstructs_NameTheConstructAndLine()
    {
        var e = Fails("a\nb\n{% include 'x.jinja' %}");
        Assert.Equal(3, e.Line);
        Assert.Contains("'{% include %}' tag is not supported", e.Message);
        Assert.StartsWith("chat template line 3:", e.Message);

        e = Fails("{{ x }}\n{{ x | frobnicate }}");
        Assert.Equal(2, e.Line);
        Assert.Contains("unknown filter 'frobnicate'", e.Message);
        Assert.Contains("tojson", e.Message);

        e = Fails("\n\n\n{% if x is frobnicated %}{% endif %}");
        Assert.Equal(4, e.Line);
        Assert.Contains("unknown test 'frobnicated'", e.Message);

        Assert.Contains("unknown tag '{% frobnicate %}'", Fails("{% frobnicate %}").Message);
        Assert.Contains("recursive for loops are not supported",
            Fails("{% for x in y recursive %}{% endfor %}").Message);
        Assert.Contains("'{% call %}' tag is not supported", Fails("{% call m() %}{% endcall %}").Message);
        Assert.Contains("*args / **kwargs", Fails("{{ f(*xs) }}").Message);
        Assert.Contains("printf-style", Fails("{{ '%s' % 1 }}").Message);
    }

    [Fact]
    public void SyntaxErrors_NameWhatWasExpected()
    {
        var e = Fails("{% for m in messages %}\n{{ m }}\n");
        Assert.Contains("missing {% else %} or {% endfor %}", e.Message);
        Assert.Contains("missing '}}'", Fails("{{ x ").Message);
        Assert.Contains("unterminated string", Fails("x\n{{ 'abc }}").Message);
        Assert.Contains("'{% endif %}' with no open block", Fails("{% endif %}").Message);
        Assert.Contains("missing end of comment", Fails("{# never closed").Message);
        Assert.Contains("unexpected ')'", Fails("{{ x) }}").Message);
    }

    [Fact]
    public void RuntimeErrors_NameTheValueAndLine()
    {
        var e = Fails("ok\n{{ message.content.strip() }}");
        Assert.Equal(2, e.Line);
        Assert.Contains("'message' is undefined", e.Message);

        e = Fails("{{ m.content + 'x' }}", ("m", JinjaValue.NewDict()));
        Assert.Contains("has no attribute 'content'", e.Message);

        Assert.Contains("unsupported operand type(s) for +: 'str' and 'NoneType'", Fails("{{ 'a' + none }}").Message);
        Assert.Contains("only namespace() objects take attributes", Fails("{% set d = {} %}{% set d.x = 1 %}").Message);
        Assert.Contains("'nothing' is undefined", Fails("{{ nothing() }}").Message);
        Assert.Contains("division by zero", Fails("{{ 1 / 0 }}").Message);
        Assert.Contains("not JSON serializable", Fails("{{ x | tojson }}").Message);
    }

    [Fact]
    public void RaiseException_CarriesTheTemplatesMessage()
    {
        var e = Assert.Throws<TemplateRaisedException>(() =>
            Render("a\n{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.Raised);
        Assert.Equal(2, e.Line);
        Assert.Contains("Conversation roles must alternate", e.Message);
    }

    [Fact]
    public void Sandbox_HasNoMutatingMethods_AndBoundsRange()
    {
        Assert.Contains("undefined", Fails("{% set l = [] %}{{ l.append(1) }}").Message);
        Assert.Contains("range too big", Fails("{{ range(1000000) | length }}").Message);
    }

    [Fact]
    public void Render_DoesNotChangeTheTemplate_AndIsRepeatable()
    {
        var t = JinjaTemplate.Parse(
            "{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}");
        var vars = new Dictionary<string, object?> { ["xs"] = new List<object?> { 1L, 2L } };
        Assert.Equal("3", t.Render(vars));
        Assert.Equal("3", t.Render(vars));
    }

    [Fact]
    public void ToJson_MatchesPythonJsonDumps()
    {
        var v = JinjaJson.Parse("""{"a": [1, 2.5, "x\u0001y"], "b": {}, "c": null, "é": "日本"}""");
        Assert.Equal("{\"a\": [1, 2.5, \"x\\u0001y\"], \"b\": {}, \"c\": null, \"é\": \"日本\"}", JinjaJson.Serialize(v));
        Assert.Equal("[\n  1\n]", JinjaJson.Serialize(new List<object?> { 1L }, indent: 2));
        Assert.Equal("1e+16", JinjaJson.Serialize(1e16));
        Assert.Equal("3.0", JinjaJson.Serialize(3.0));
        Assert.Equal("[0.0001, 1e-05, -0.0, 123456789012345.6, 1.5e+300, 0.30000000000000004]",
            JinjaJson.Serialize(new List<object?> { 0.0001, 1e-5, -0.0, 123456789012345.6, 1.5e300, 0.1 + 0.2 }));
    }
}
