using System.Text.Json;
using Microsoft.Extensions.AI;

namespace NativeReasoner.Server;

/// <summary>JSON pieces both response formats write: usage and tool calls in OpenAI's shapes.</summary>
internal static class OpenAIJson
{
    /// <summary>
    /// <c>"usage": {prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details: {cached_tokens},
    /// completion_tokens_details: {reasoning_tokens}}</c>, or null when the client reported none.
    /// </summary>
    public static void WriteUsage(Utf8JsonWriter w, UsageDetails? usage)
    {
        if (usage == null)
        {
            w.WriteNull("usage");
            return;
        }
        long prompt = usage.InputTokenCount ?? 0, completion = usage.OutputTokenCount ?? 0;
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", prompt);
        w.WriteNumber("completion_tokens", completion);
        w.WriteNumber("total_tokens", usage.TotalTokenCount ?? prompt + completion);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", usage.CachedInputTokenCount ?? 0);
        w.WriteEndObject();
        w.WriteStartObject("completion_tokens_details");
        w.WriteNumber("reasoning_tokens", usage.ReasoningTokenCount ?? 0);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>
    /// <c>"tool_calls": [{index?, id, type: "function", function: {name, arguments}}]</c>, arguments as a JSON string;
    /// <paramref name="firstIndex"/> ≥ 0 numbers them for a streamed delta.
    /// </summary>
    public static void WriteToolCalls(Utf8JsonWriter w, IReadOnlyList<FunctionCallContent> calls, int from,
        int firstIndex = -1)
    {
        w.WriteStartArray("tool_calls");
        for (int i = from; i < calls.Count; i++)
        {
            var call = calls[i];
            w.WriteStartObject();
            if (firstIndex >= 0) w.WriteNumber("index", firstIndex + i - from);
            w.WriteString("id", call.CallId);
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", call.Name);
            w.WriteString("arguments",
                JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>(),
                    AIJsonUtilities.DefaultOptions));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
