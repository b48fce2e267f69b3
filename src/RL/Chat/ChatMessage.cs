namespace NativeReasoner.RL.Chat;

/// <summary>
/// One turn of a conversation: role ("system", "user", "assistant", "tool"), its text, and for assistant turns
/// the reasoning kept apart (Qwen3's <c>reasoning_content</c>; templates that do not know it ignore it).
/// </summary>
public sealed record ChatMessage(string Role, string Content, string? ReasoningContent = null)
{
    /// <summary>The message as the template sees it: a dict with role, content (and reasoning_content).</summary>
    public OrderedDictionary<object, object?> ToValue()
    {
        var d = JinjaValue.NewDict();
        d["role"] = Role;
        d["content"] = Content;
        if (ReasoningContent != null) d["reasoning_content"] = ReasoningContent;
        return d;
    }
}
