namespace NativeReasoner.Server;

/// <summary>
/// The limits and the key of the OpenAI-compatible endpoints (<see cref="OpenAIEndpoints.MapNativeReasonerOpenAI"/>).
/// </summary>
public sealed class NativeReasonerServerOptions
{
    /// <summary>Requests generating at once; the rest wait in the queue.</summary>
    public int MaxConcurrentSequences { get; set; } = 8;

    /// <summary>Requests allowed to wait for a free sequence; one more is answered 429 with Retry-After.</summary>
    public int MaxQueueLength { get; set; } = 64;

    /// <summary>The largest max_tokens a request may ask for, and what a request without max_tokens gets.</summary>
    public int MaxTokens { get; set; } = 1024;

    /// <summary>When set, every /v1 request must carry <c>Authorization: Bearer KEY</c>; null = open.</summary>
    public string? ApiKey { get; set; }

    /// <summary>The model id served (null = the chat client's default model id, else "nativereasoner").</summary>
    public string? ModelId { get; set; }

    /// <summary>Serve the chat page at <c>/</c> (off when the application has its own root page).</summary>
    public bool MapChatPage { get; set; } = true;

    /// <summary>Seconds a 429 answer tells the client to wait (its Retry-After header).</summary>
    public int RetryAfterSeconds { get; set; } = 1;

    internal void Validate()
    {
        if (MaxConcurrentSequences < 1)
            throw new ArgumentException($"MaxConcurrentSequences must be ≥ 1, got {MaxConcurrentSequences}");
        if (MaxQueueLength < 0) throw new ArgumentException($"MaxQueueLength must be ≥ 0, got {MaxQueueLength}");
        if (MaxTokens < 1) throw new ArgumentException($"MaxTokens must be ≥ 1, got {MaxTokens}");
        if (RetryAfterSeconds < 1)
            throw new ArgumentException($"RetryAfterSeconds must be ≥ 1, got {RetryAfterSeconds}");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("ApiKey must not be empty (null turns the key off)");
    }
}
