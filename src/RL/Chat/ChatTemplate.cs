using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.IO;

namespace NativeReasoner.RL.Chat;

/// <summary>
/// A model's chat template, rendered as <c>transformers</c>' <c>apply_chat_template</c> renders it: the variables are
/// <c>messages</c>, <c>tools</c> and <c>documents</c> (None when not given), <c>add_generation_prompt</c>, the
/// tokenizer's special tokens (<c>bos_token</c>, <c>eos_token</c>, …; absent when the config has none) and any
/// extra keyword arguments (<c>enable_thinking</c>, <c>date_string</c>, …).
/// Loaded from <c>tokenizer_config.json</c>'s <c>chat_template</c> (a string, or a list of
/// <c>{"name", "template"}</c>: "default", or "tool_use" when tools are given) or from <c>chat_template.jinja</c>.
/// </summary>
public sealed class ChatTemplate
{
    public const string ConfigFileName = "tokenizer_config.json";
    public const string JinjaFileName = "chat_template.jinja";

    private static readonly string[] SpecialTokenKeys =
        ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private readonly Dictionary<string, JinjaTemplate> _templates;
    private readonly Dictionary<string, object?> _specialTokens;
    // Where each template came from (the file, and the template's name when there are several), for render errors.
    private readonly Dictionary<JinjaTemplate, string> _origins;
    private readonly string _configPath;

    /// <summary>The template source (the "default" one when the config names several).</summary>
    public string Source { get; }

    public string? BosToken => _specialTokens.GetValueOrDefault("bos_token") as string;

    public string? EosToken => _specialTokens.GetValueOrDefault("eos_token") as string;

    /// <summary>The clock behind <c>strftime_now</c> (tests fix it).</summary>
    public Func<DateTime> Clock { get; set; } = () => DateTime.Now;

    private ChatTemplate(Dictionary<string, JinjaTemplate> templates, string source,
        Dictionary<string, object?> specialTokens, Dictionary<JinjaTemplate, string>? origins = null,
        string configPath = ConfigFileName)
    {
        _configPath = configPath;
        _templates = templates;
        _origins = origins ?? new(ReferenceEqualityComparer.Instance);
        Source = source;
        _specialTokens = specialTokens;
    }

    /// <summary>A template from its Jinja source and the special tokens it may print.</summary>
    public static ChatTemplate FromSource(string source, string? bosToken = null, string? eosToken = null)
    {
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (bosToken != null) tokens["bos_token"] = bosToken;
        if (eosToken != null) tokens["eos_token"] = eosToken;
        return new ChatTemplate(new() { ["default"] = JinjaTemplate.Parse(source) }, source, tokens);
    }

    /// <summary>Reads <c>chat_template</c> and the special tokens from the text of a
    /// <c>tokenizer_config.json</c>; <paramref name="templateOverride"/> (read from
    /// <paramref name="overridePath"/>) replaces its <c>chat_template</c>.</summary>
    public static ChatTemplate FromTokenizerConfig(string json, string path = ConfigFileName,
        string? templateOverride = null, string overridePath = JinjaFileName)
    {
        using (var doc = StrictJson.Parse(json, path))
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: expected a JSON object");
        var root = JsonNode.Parse(json, documentOptions: StrictJson.DocumentOptions)!.AsObject();
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var key in SpecialTokenKeys)
            if (TokenContent(root[key]) is { } content) tokens[key] = content;
        if (root["additional_special_tokens"] is JsonArray extra)
            tokens["additional_special_tokens"] = extra.Select(e => (object?)TokenContent(e)).ToList();

        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        if (templateOverride != null) sources["default"] = templateOverride;
        else
        {
            switch (root["chat_template"])
            {
                case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                    sources["default"] = v.GetValue<string>();
                    break;
                case JsonArray list:
                    foreach (var item in list)
                    {
                        if (item is not JsonObject o || o["name"]?.GetValueKind() != JsonValueKind.String
                            || o["template"]?.GetValueKind() != JsonValueKind.String)
                            throw new InvalidDataException(
                                $"{path}: chat_template list items must be " +
                                "{\"name\": \"...\", \"template\": \"...\"}");
                        sources[o["name"]!.GetValue<string>()] = o["template"]!.GetValue<string>();
                    }
                    break;
                case null:
                    throw new InvalidDataException(
                        $"{path}: no \"chat_template\" (expected a Jinja string or a list of named templates)");
                default:
                    throw new InvalidDataException(
                        $"{path}: \"chat_template\" must be a string or a list of {{name, template}}, " +
                        $"got {root["chat_template"]!.GetValueKind()}");
            }
        }
        var templates = new Dictionary<string, JinjaTemplate>(StringComparer.Ordinal);
        var origins = new Dictionary<JinjaTemplate, string>(ReferenceEqualityComparer.Instance);
        foreach (var (name, source) in sources)
        {
            var where = templateOverride != null ? overridePath
                : sources.Count > 1 ? $"{path} (chat_template '{name}')" : path;
            try
            {
                templates[name] = JinjaTemplate.Parse(source);
                origins[templates[name]] = where;
            }
            catch (TemplateException e)
            {
                throw new TemplateException(e.Line, e.Reason, where);
            }
        }
        if (sources.Count == 0)
            throw new InvalidDataException($"{path}: \"chat_template\" is an empty list; expected at least one " +
                                           "{name, template}");
        string main = sources.GetValueOrDefault("default") ?? sources.Values.First();
        return new ChatTemplate(templates, main, tokens, origins, path);
    }

    private static string? TokenContent(JsonNode? node) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o when o["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String =>
            c.GetValue<string>(),
        _ => null,
    };

    /// <summary>
    /// The model directory's chat template: <c>chat_template.jinja</c> if present, else <c>tokenizer_config.json</c>'s
    /// <c>chat_template</c>; null when it has neither.
    /// </summary>
    public static ChatTemplate? TryLoad(string modelDirectory)
    {
        var configPath = Path.Combine(modelDirectory, ConfigFileName);
        var jinjaPath = Path.Combine(modelDirectory, JinjaFileName);
        string? config = File.Exists(configPath) ? File.ReadAllText(configPath) : null;
        string? jinja = File.Exists(jinjaPath) ? File.ReadAllText(jinjaPath) : null;
        if (jinja != null) return FromTokenizerConfig(config ?? "{}", configPath, jinja, jinjaPath);
        if (config == null) return null;
        using (var doc = StrictJson.Parse(config, configPath))
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("chat_template", out var t) || t.ValueKind == JsonValueKind.Null)
                return null;
        return FromTokenizerConfig(config, configPath);
    }

    /// <summary>Renders plain messages.</summary>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extra = null) =>
        RenderValues(messages.Select(m => (object?)m.ToValue()).ToList(), addGenerationPrompt, tools: null, extra);

    /// <summary>
    /// Renders template values (<see cref="JinjaJson.FromJson"/> converts OpenAI-style JSON messages and tool schemas).
    /// </summary>
    public string RenderValues(IReadOnlyList<object?> messages, bool addGenerationPrompt,
        IReadOnlyList<object?>? tools = null,
        IReadOnlyDictionary<string, object?>? extra = null, string? templateName = null)
    {
        var template = Select(templateName, tools != null);
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages as List<object?> ?? messages.ToList(),
            ["tools"] = tools == null ? null : tools as List<object?> ?? tools.ToList(),
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        foreach (var (k, v) in _specialTokens) variables[k] = v;
        if (extra != null)
            foreach (var (k, v) in extra) variables[k] = v;
        try
        {
            return template.Render(variables, Clock);
        }
        catch (TemplateException e) when (e.TemplateSource == null && _origins.TryGetValue(template, out var origin))
        {
            throw e is TemplateRaisedException raised
                ? new TemplateRaisedException(raised.Line, raised.Raised, origin)
                : new TemplateException(e.Line, e.Reason, origin);
        }
    }

    private JinjaTemplate Select(string? name, bool hasTools)
    {
        if (name != null)
            return _templates.GetValueOrDefault(name)
                ?? throw new ArgumentException(
                    $"no chat template named '{name}'; available: {string.Join(", ", _templates.Keys)}");
        if (hasTools && _templates.TryGetValue("tool_use", out var toolUse)) return toolUse;
        if (_templates.TryGetValue("default", out var main)) return main;
        throw new InvalidDataException(
            $"{_configPath}: this tokenizer has several chat templates and none named 'default'; pick one of: " +
            string.Join(", ", _templates.Keys));
    }
}
