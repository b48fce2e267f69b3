using System.Text.Json;

namespace NativeReasoner.Server;

/// <summary>
/// How one endpoint writes its answer: as streamed chunks (one JSON object per server-sent event) or as one
/// JSON object. <see cref="ChatCompletionFormat"/> and <see cref="TextCompletionFormat"/> implement it.
/// </summary>
internal abstract class ResponseFormat(string id, string model)
{
    public string Id { get; } = id;
    public string Model { get; } = model;
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>The chunk before any text (the chat format's role announcement); false when there is none.</summary>
    public abstract bool WriteStart(Utf8JsonWriter w);

    /// <summary>
    /// A chunk with what one update added: reasoning, answer text, tool calls from index <c>firstCall</c>.
    /// </summary>
    public abstract void WriteDelta(Utf8JsonWriter w, string reasoning, string answer, ResponseAccumulator response,
        int firstCall);

    /// <summary>The chunk that carries the finish reason.</summary>
    public abstract void WriteFinish(Utf8JsonWriter w, ResponseAccumulator response);

    /// <summary>The last chunk with <c>stream_options.include_usage</c>: no choices, the usage.</summary>
    public abstract void WriteUsageChunk(Utf8JsonWriter w, ResponseAccumulator response);

    /// <summary>The whole answer as one object (a request without <c>stream</c>).</summary>
    public abstract void WriteResponse(Utf8JsonWriter w, ResponseAccumulator response);
}
