using System.Text;

namespace NativeReasoner.RL.Chat;

/// <summary>
/// How a model directory turns a conversation into the prompt for its next answer: its chat template
/// (<c>tokenizer_config.json</c>'s <c>chat_template</c> or <c>chat_template.jinja</c>) with the generation prompt,
/// else its <c>prompt_template.json</c> (models trained here): each user turn formatted by the template, each
/// earlier answer appended after its question.
/// </summary>
public sealed class ChatPrompt
{
    public ChatTemplate? Template { get; }

    public PromptTemplate? Fallback { get; }

    private ChatPrompt(ChatTemplate? template, PromptTemplate? fallback)
    {
        Template = template;
        Fallback = fallback;
    }

    public static ChatPrompt FromTemplate(ChatTemplate template) => new(template, null);

    public static ChatPrompt FromPromptTemplate(PromptTemplate template) => new(null, template);

    /// <summary>The directory's chat template, else its prompt_template.json; neither → a clear error.</summary>
    public static ChatPrompt Load(string modelDirectory)
    {
        if (ChatTemplate.TryLoad(modelDirectory) is { } template) return new ChatPrompt(template, null);
        if (File.Exists(Path.Combine(modelDirectory, PromptTemplate.FileName)))
            return new ChatPrompt(null, PromptTemplate.Load(modelDirectory));
        throw new InvalidOperationException(
            $"model directory '{modelDirectory}' has no chat template: expected \"chat_template\" in " +
            $"{ChatTemplate.ConfigFileName}, " +
            $"a {ChatTemplate.JinjaFileName} file, or a {PromptTemplate.FileName}");
    }

    /// <summary>Where the prompt comes from, for messages.</summary>
    public string Description => Template != null ? "the model's chat template" : PromptTemplate.FileName;

    /// <summary>The prompt for the assistant's next turn; the conversation must end with a user turn.</summary>
    public string Render(IReadOnlyList<ChatMessage> conversation)
    {
        if (conversation.Count == 0 || conversation[^1].Role != "user")
            throw new ArgumentException("the conversation must end with a user message");
        if (Template != null) return Template.Render(conversation, addGenerationPrompt: true);
        var sb = new StringBuilder();
        foreach (var m in conversation)
        {
            switch (m.Role)
            {
                case "user": sb.Append(Fallback!.Format(m.Content)); break;
                case "assistant": sb.Append(m.Content).Append('\n'); break;
                default:
                    throw new ArgumentException(
                        $"{PromptTemplate.FileName} has no place for a '{m.Role}' message; " +
                        "only user and assistant turns");
            }
        }
        return sb.ToString();
    }
}
