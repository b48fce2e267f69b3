using System.Text.Json;

namespace NativeReasoner.Server;

/// <summary>
/// A request the server refuses, written as OpenAI's error object:
/// <c>{"error": {"message", "type", "param", "code"}}</c> with <see cref="Status"/> as the HTTP status.
/// <see cref="Param"/> names the offending field (<c>messages[2].content</c>, <c>max_tokens</c>, …) when there
/// is one.
/// </summary>
public sealed class OpenAIRequestException(int status, string message, string? param = null,
    string type = "invalid_request_error", string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string Type { get; } = type;
    public string? Code { get; } = code;

    /// <summary>A 400 for a field: its path and what was expected.</summary>
    public static OpenAIRequestException BadField(string param, string message) =>
        new(400, $"'{param}': {message}", param);

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", Message);
        w.WriteString("type", Type);
        if (Param != null) w.WriteString("param", Param);
        else w.WriteNull("param");
        if (Code != null) w.WriteString("code", Code);
        else w.WriteNull("code");
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
