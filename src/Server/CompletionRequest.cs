using System.Text.Json;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace NativeReasoner.Server;

/// <summary>
/// Reads a <c>POST /v1/completions</c> body. The chat client takes conversations, not raw text, so the prompt
/// becomes one user turn through the model's chat template; the answer is the choice's <c>text</c> and the
/// thinking its <c>reasoning_content</c>. One prompt per request (a string, or an array of one string).
/// </summary>
internal static class CompletionRequest
{
    public static GenerationRequest Parse(JsonElement root, NativeReasonerServerOptions limits, string servedModel)
    {
        var (options, stream, includeUsage) = GenerationRequest.ReadCommon(root, limits, servedModel);
        if (JsonFields.Bool(root, "echo") == true)
            throw OpenAIRequestException.BadField("echo", "echoing the prompt is not supported");
        if (JsonFields.String(root, "suffix") is { Length: > 0 })
            throw OpenAIRequestException.BadField("suffix", "insertion (a suffix) is not supported");
        var prompt = JsonFields.Get(root, "prompt")
                     ?? throw OpenAIRequestException.BadField("prompt", "is required (a string)");
        string text;
        if (prompt.ValueKind == JsonValueKind.String) text = prompt.GetString()!;
        else if (prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() == 1
                 && prompt[0].ValueKind == JsonValueKind.String)
            text = prompt[0].GetString()!;
        else throw JsonFields.Wrong("prompt", "a string or an array of one string", prompt);
        return new GenerationRequest([new AiChatMessage(ChatRole.User, text)], options, stream, includeUsage);
    }
}
