// Source: a question-to-prompt template, as DeepSeek-R1-Zero's template wraps the question (arXiv:2501.12948, Table 1).
using System.Text.Json;

namespace NativeReasoner.RL;

/// <summary>
/// Turns a plain question into the model's prompt. <see cref="Template"/> contains <c>{question}</c>; when it
/// ends with <c>&lt;think&gt;</c> the reasoning block is prefilled (format rewards then judge the completion as
/// if it began with it). Saved in the model directory as <c>prompt_template.json</c>: <c>{"template": "…"}</c>.
/// </summary>
public sealed record PromptTemplate(string Template)
{
    public const string FileName = "prompt_template.json";

    /// <summary>The default for models trained here: BOS, the question, then the assistant turn.</summary>
    public static PromptTemplate Default { get; } = new("<|bos|>User: {question}\nAssistant: ");

    public bool ThinkPrefilled => Template.TrimEnd().EndsWith(CharTokenizer.ThinkStart, StringComparison.Ordinal);

    public string Format(string question)
    {
        if (!Template.Contains("{question}", StringComparison.Ordinal))
            throw new InvalidOperationException("prompt template has no {question} placeholder");
        return Template.Replace("{question}", question, StringComparison.Ordinal);
    }

    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(new Dictionary<string, string> { ["template"] = Template }));
    }

    /// <summary>The directory's template, or <see cref="Default"/> when it has none.</summary>
    public static PromptTemplate Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return Default;
        try
        {
            var d = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(path));
            var t = d?.GetValueOrDefault("template") ?? throw new InvalidDataException("missing \"template\"");
            return new PromptTemplate(t);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }
}
