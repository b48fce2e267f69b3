using System.Text.Json;

namespace NativeReasoner.Server;

/// <summary>
/// <c>chat.completion</c> and <c>chat.completion.chunk</c> objects: the thinking in <c>reasoning_content</c> of the
/// message (or delta) beside <c>content</c>, tool calls in <c>tool_calls</c>, the usage with reasoning and cached
/// token details.
/// </summary>
internal sealed class ChatCompletionFormat(string id, string model) : ResponseFormat(id, model)
{
    public override bool WriteStart(Utf8JsonWriter w)
    {
        BeginChunk(w);
        w.WriteStartObject("delta");
        w.WriteString("role", "assistant");
        w.WriteString("content", "");
        w.WriteEndObject();
        EndChunk(w, null);
        return true;
    }

    public override void WriteDelta(Utf8JsonWriter w, string reasoning, string answer, ResponseAccumulator response,
        int firstCall)
    {
        BeginChunk(w);
        w.WriteStartObject("delta");
        if (reasoning.Length > 0) w.WriteString("reasoning_content", reasoning);
        if (answer.Length > 0) w.WriteString("content", answer);
        if (firstCall < response.ToolCalls.Count)
            OpenAIJson.WriteToolCalls(w, response.ToolCalls, firstCall, firstCall);
        w.WriteEndObject();
        EndChunk(w, null);
    }

    public override void WriteFinish(Utf8JsonWriter w, ResponseAccumulator response)
    {
        BeginChunk(w);
        w.WriteStartObject("delta");
        w.WriteEndObject();
        EndChunk(w, response.FinishReason());
    }

    public override void WriteUsageChunk(Utf8JsonWriter w, ResponseAccumulator response)
    {
        WriteHeader(w, "chat.completion.chunk");
        w.WriteStartArray("choices");
        w.WriteEndArray();
        OpenAIJson.WriteUsage(w, response.Usage);
        w.WriteEndObject();
    }

    public override void WriteResponse(Utf8JsonWriter w, ResponseAccumulator response)
    {
        WriteHeader(w, "chat.completion");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        // OpenAI's convention: a message that only calls tools has null content.
        if (response.Answer.Length == 0 && response.ToolCalls.Count > 0) w.WriteNull("content");
        else w.WriteString("content", response.Answer.ToString());
        if (response.Reasoning.Length > 0) w.WriteString("reasoning_content", response.Reasoning.ToString());
        else w.WriteNull("reasoning_content");
        if (response.ToolCalls.Count > 0) OpenAIJson.WriteToolCalls(w, response.ToolCalls, 0);
        w.WriteEndObject();
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", response.FinishReason());
        w.WriteEndObject();
        w.WriteEndArray();
        OpenAIJson.WriteUsage(w, response.Usage);
        w.WriteEndObject();
    }

    private void WriteHeader(Utf8JsonWriter w, string kind)
    {
        w.WriteStartObject();
        w.WriteString("id", Id);
        w.WriteString("object", kind);
        w.WriteNumber("created", Created);
        w.WriteString("model", Model);
    }

    private void BeginChunk(Utf8JsonWriter w)
    {
        WriteHeader(w, "chat.completion.chunk");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
    }

    private static void EndChunk(Utf8JsonWriter w, string? finishReason)
    {
        w.WriteNull("logprobs");
        if (finishReason != null) w.WriteString("finish_reason", finishReason);
        else w.WriteNull("finish_reason");
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
