using System.Text.Json;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace NativeReasoner.Server;

/// <summary>
/// One validated /v1 request as the chat client takes it: the conversation, the options and how to answer
/// (a stream or one JSON object; with stream_options.include_usage a last chunk with the usage).
/// </summary>
internal sealed record GenerationRequest(IReadOnlyList<AiChatMessage> Messages, ChatOptions Options, bool Stream,
    bool IncludeUsage)
{
    /// <summary>
    /// The fields /v1/chat/completions and /v1/completions share: model, sampling, limits, stop, seed, n, stream.
    /// </summary>
    public static (ChatOptions Options, bool Stream, bool IncludeUsage) ReadCommon(JsonElement root,
        NativeReasonerServerOptions limits, string servedModel)
    {
        var model = JsonFields.String(root, "model");
        if (model != null && model != servedModel)
            throw new OpenAIRequestException(404, $"'model': this server serves '{servedModel}', not '{model}'",
                "model", code: "model_not_found");
        if (JsonFields.Integer(root, "n", 1, int.MaxValue) is > 1)
            throw OpenAIRequestException.BadField("n", "only n = 1 is supported (one choice per request)");
        if (JsonFields.Integer(root, "best_of", 1, int.MaxValue) is > 1)
            throw OpenAIRequestException.BadField("best_of", "only best_of = 1 is supported");
        var logprobs = JsonFields.Get(root, "logprobs");
        if (logprobs is { ValueKind: not JsonValueKind.False })
            throw OpenAIRequestException.BadField("logprobs", "log probabilities are not supported");
        var options = new ChatOptions { ModelId = servedModel };
        options.Temperature = (float?)JsonFields.Number(root, "temperature", 0, 2);
        options.TopP = (float?)JsonFields.Number(root, "top_p", 0, 1);
        if (options.TopP == 0) throw OpenAIRequestException.BadField("top_p", "must be in (0, 1], got 0");
        options.TopK = (int?)JsonFields.Integer(root, "top_k", 0, int.MaxValue);
        options.Seed = JsonFields.Integer(root, "seed", long.MinValue, long.MaxValue);
        var maxTokens = JsonFields.Integer(root, "max_completion_tokens", 1, long.MaxValue)
                        ?? JsonFields.Integer(root, "max_tokens", 1, long.MaxValue);
        string maxName = JsonFields.Get(root, "max_completion_tokens") != null ? "max_completion_tokens" : "max_tokens";
        if (maxTokens > limits.MaxTokens)
            throw OpenAIRequestException.BadField(maxName,
                $"this server answers with at most {limits.MaxTokens} tokens, asked for {maxTokens}");
        options.MaxOutputTokens = (int)(maxTokens ?? limits.MaxTokens);
        options.StopSequences = ReadStop(root);
        bool stream = JsonFields.Bool(root, "stream") ?? false;
        bool includeUsage = false;
        if (JsonFields.Object(root, "stream_options") is { } streamOptions)
            includeUsage = JsonFields.Bool(streamOptions, "include_usage", "stream_options") ?? false;
        return (options, stream, includeUsage);
    }

    private static List<string>? ReadStop(JsonElement root)
    {
        if (JsonFields.Get(root, "stop") is not { } stop) return null;
        if (stop.ValueKind == JsonValueKind.String) return [stop.GetString()!];
        if (stop.ValueKind != JsonValueKind.Array)
            throw JsonFields.Wrong("stop", "a string or an array of strings", stop);
        var list = new List<string>();
        int i = 0;
        foreach (var s in stop.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.String || s.GetString()!.Length == 0)
                throw JsonFields.Wrong($"stop[{i}]", "a non-empty string", s);
            list.Add(s.GetString()!);
            i++;
        }
        return list;
    }
}
