using System.Text.Json.Nodes;
using NativeReasoner.RL.Chat;
using Xunit;

namespace NativeReasoner.Tests.RL.Chat;

/// <summary>
/// The real and written chat templates rendered over the conversation set must give the strings Python's jinja2
/// gives with HF's settings (tests/reference/chat_templates.py), and fail where jinja2 fails.
/// </summary>
public class ChatTemplateGoldenTests
{
    internal static readonly DateTime FixedNow = new(2025, 3, 9, 14, 5, 7);

    internal static string Fixture(string name) =>
        Path.Combine(AppContext.BaseDirectory, "fixtures", "chat-templates", name);

    public static TheoryData<string> Templates => new()
    {
        "deepseek_v3", "deepseek_r1_distill", "qwen2_5", "qwen3", "llama3_1", "llama3_1_tools",
    };

    [Theory]
    [MemberData(nameof(Templates))]
    public void Renders_AsJinja2(string name)
    {
        var path = Fixture(name + ".tokenizer_config.json");
        var template = ChatTemplate.FromTokenizerConfig(File.ReadAllText(path), path);
        template.Clock = () => FixedNow;
        var set = JsonNode.Parse(File.ReadAllText(Fixture("conversations.json")))!;
        var conversations = set["conversations"]!.AsObject();
        var tools = (List<object?>)JinjaJson.FromJson(set["tools"])!;
        var cases = JsonNode.Parse(File.ReadAllText(Fixture(name + ".expected.json")))!["cases"]!.AsArray();
        Assert.True(cases.Count >= 48, $"{name}: only {cases.Count} cases");
        var failures = new List<string>();
        int rendered = 0;
        foreach (var c in cases)
        {
            var conversation = c!["conversation"]!.GetValue<string>();
            var messages = (List<object?>)JinjaJson.FromJson(conversations[conversation])!;
            bool generation = c["add_generation_prompt"]!.GetValue<bool>();
            bool withTools = c["tools"]!.GetValue<bool>();
            var extra = ((OrderedDictionary<object, object?>)JinjaJson.FromJson(c["extra"])!)
                .ToDictionary(kv => (string)kv.Key, kv => kv.Value);
            string label = $"{name}/{conversation} gen={generation} tools={withTools} " +
                $"extra={c["extra"]!.ToJsonString()}";
            string? expected = c["output"]?.GetValue<string>();
            try
            {
                var actual = template.RenderValues(messages, generation, withTools ? tools : null, extra);
                if (expected == null) failures.Add($"{label}: jinja2 failed ({c["error"]}) but rendered:\n{actual}");
                else if (actual != expected) failures.Add(
                    $"{label}:\nexpected {Show(expected)}\nactual   {Show(actual)}");
                else rendered++;
            }
            catch (TemplateException e)
            {
                if (expected != null) failures.Add($"{label}: {e.Message}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases differ:\n" + string.Join("\n\n",
            failures.Take(5)));
        Assert.True(rendered > cases.Count / 2, $"{name}: only {rendered} of {cases.Count} cases rendered");
    }

    private static string Show(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    [Fact]
    public void R1Distill_DropsEarlierReasoning_AndForcesThinkingOpen()
    {
        var path = Fixture("deepseek_r1_distill.tokenizer_config.json");
        var template = ChatTemplate.FromTokenizerConfig(File.ReadAllText(path), path);
        var text = template.Render(
        [
            new ChatMessage("user", "2+2?"),
            new ChatMessage("assistant", "<think>\nadd\n</think>\n\n4"),
            new ChatMessage("user", "3+3?"),
        ], addGenerationPrompt: true);
        Assert.Equal(
            "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n",
            text);
        Assert.True(ThinkingSplit.PromptForcesThinking(text));
    }

    [Fact]
    public void Qwen3_EnableThinkingFalse_AddsEmptyThinkBlock()
    {
        var path = Fixture("qwen3.tokenizer_config.json");
        var template = ChatTemplate.FromTokenizerConfig(File.ReadAllText(path), path);
        Assert.Null(template.BosToken);
        Assert.Equal("<|im_end|>", template.EosToken);
        var text = template.Render([new ChatMessage("user", "hi")], true, new Dictionary<string,
            object?>
        { ["enable_thinking"] = false });
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", text);
    }

    [Fact]
    public void NamedTemplates_PickDefault_OrToolUseWithTools()
    {
        var config = """
            {"bos_token": {"content": "<s>"}, "chat_template": [
              {"name": "default", "template": "D{{ bos_token }}{{ messages | length }}"},
              {"name": "tool_use", "template": "T{{ tools | length }}"}]}
            """;
        var t = ChatTemplate.FromTokenizerConfig(config);
        Assert.Equal("<s>", t.BosToken);
        var messages = new List<object?> { new ChatMessage("user", "x").ToValue() };
        Assert.Equal("D<s>1", t.RenderValues(messages, false));
        Assert.Equal("T2", t.RenderValues(messages, false, tools: [1L, 2L]));
        Assert.Equal("D<s>1", t.RenderValues(messages, false, tools: [1L], templateName: "default"));
        Assert.Contains("no chat template named 'x'", Assert.Throws<ArgumentException>(() => t.RenderValues(messages,
            false, templateName: "x")).Message);
    }

    [Fact]
    public void BadConfigs_ClearErrors()
    {
        Assert.Contains("no \"chat_template\"", Assert.Throws<InvalidDataException>(() =>
            ChatTemplate.FromTokenizerConfig("{}", "cfg.json")).Message);
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() =>
            ChatTemplate.FromTokenizerConfig("{", "cfg.json")).Message);
        Assert.Contains("must be a string or a list", Assert.Throws<InvalidDataException>(() =>
            ChatTemplate.FromTokenizerConfig("{\"chat_template\": 3}")).Message);
        var e = Assert.Throws<TemplateException>(() =>
            ChatTemplate.FromTokenizerConfig("{\"chat_template\": \"line one\\n{% include 'x' %}\"}", "cfg.json"));
        Assert.Equal(2, e.Line);
        Assert.Contains("cfg.json", e.Message);
        Assert.Contains("include", e.Message);
    }

    [Fact]
    public void TryLoad_ReadsJinjaFile_OrConfig_OrNothing()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-chat-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            Assert.Null(ChatTemplate.TryLoad(dir));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"eos_token\": \"<e>\"}");
            Assert.Null(ChatTemplate.TryLoad(dir));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
                "{\"eos_token\": \"<e>\", \"chat_template\": \"A{{ eos_token }}\"}");
            Assert.Equal("A<e>", ChatTemplate.TryLoad(dir)!.Render([], false));
            File.WriteAllText(Path.Combine(dir, "chat_template.jinja"), "J{{ eos_token }}\n");
            Assert.Equal("J<e>", ChatTemplate.TryLoad(dir)!.Render([], false));
        }
        finally { Directory.Delete(dir, true); }
    }
}
