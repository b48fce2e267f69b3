using System.Text;
using Microsoft.Extensions.AI;

namespace NativeReasoner.Server;

/// <summary>
/// Collects a response from the chat client's updates: the thinking, the answer, tool calls, the usage and the
/// finish reason; <see cref="Add"/> also hands back what one update adds, for a streamed chunk.
/// </summary>
internal sealed class ResponseAccumulator
{
    public StringBuilder Reasoning { get; } = new();
    public StringBuilder Answer { get; } = new();
    public List<FunctionCallContent> ToolCalls { get; } = [];
    public UsageDetails? Usage { get; private set; }
    public ChatFinishReason? Finish { get; private set; }

    /// <summary>One update: its reasoning and answer text and the tool calls it adds.</summary>
    public (string Reasoning, string Answer, int FirstNewCall) Add(ChatResponseUpdate update)
    {
        int reasoningStart = Reasoning.Length, answerStart = Answer.Length, firstCall = ToolCalls.Count;
        foreach (var content in update.Contents)
            switch (content)
            {
                case TextReasoningContent r: Reasoning.Append(r.Text); break;
                case TextContent t: Answer.Append(t.Text); break;
                case FunctionCallContent f: ToolCalls.Add(f); break;
                case UsageContent u: Usage = u.Details; break;
            }
        if (update.FinishReason is { } finish) Finish = finish;
        return (Reasoning.ToString(reasoningStart, Reasoning.Length - reasoningStart),
            Answer.ToString(answerStart, Answer.Length - answerStart), firstCall);
    }

    /// <summary>OpenAI's finish_reason for the response (stop when the client gave none).</summary>
    public string FinishReason()
    {
        if (Finish == ChatFinishReason.Length) return "length";
        if (Finish == ChatFinishReason.ToolCalls || ToolCalls.Count > 0) return "tool_calls";
        if (Finish == ChatFinishReason.ContentFilter) return "content_filter";
        return "stop";
    }
}
