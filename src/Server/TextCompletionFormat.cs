using System.Text.Json;

namespace NativeReasoner.Server;

/// <summary>
/// <c>text_completion</c> objects (streamed and whole): the answer in the choice's <c>text</c>, the thinking in its
/// <c>reasoning_content</c>.
/// </summary>
internal sealed class TextCompletionFormat(string id, string model) : ResponseFormat(id, model)
{
    public override bool WriteStart(Utf8JsonWriter w) => false;

    public override void WriteDelta(Utf8JsonWriter w, string reasoning, string answer, ResponseAccumulator response,
        int firstCall)
    {
        BeginChoice(w);
        w.WriteString("text", answer);
        if (reasoning.Length > 0) w.WriteString("reasoning_content", reasoning);
        EndChoice(w, null);
        w.WriteEndObject();
    }

    public override void WriteFinish(Utf8JsonWriter w, ResponseAccumulator response)
    {
        BeginChoice(w);
        w.WriteString("text", "");
        EndChoice(w, response.FinishReason());
        w.WriteEndObject();
    }

    public override void WriteUsageChunk(Utf8JsonWriter w, ResponseAccumulator response)
    {
        WriteHeader(w);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        OpenAIJson.WriteUsage(w, response.Usage);
        w.WriteEndObject();
    }

    public override void WriteResponse(Utf8JsonWriter w, ResponseAccumulator response)
    {
        BeginChoice(w);
        w.WriteString("text", response.Answer.ToString());
        if (response.Reasoning.Length > 0) w.WriteString("reasoning_content", response.Reasoning.ToString());
        else w.WriteNull("reasoning_content");
        EndChoice(w, response.FinishReason());
        OpenAIJson.WriteUsage(w, response.Usage);
        w.WriteEndObject();
    }

    private void WriteHeader(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id", Id);
        w.WriteString("object", "text_completion");
        w.WriteNumber("created", Created);
        w.WriteString("model", Model);
    }

    private void BeginChoice(Utf8JsonWriter w)
    {
        WriteHeader(w);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
    }

    private static void EndChoice(Utf8JsonWriter w, string? finishReason)
    {
        w.WriteNull("logprobs");
        if (finishReason != null) w.WriteString("finish_reason", finishReason);
        else w.WriteNull("finish_reason");
        w.WriteEndObject();
        w.WriteEndArray();
    }
}
