using Microsoft.Extensions.AI;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;
using NativeReasoner.Serving;

namespace NativeReasoner.Server;

/// <summary>
/// Renders a request through the model's chat template before it queues, so that a conversation the template
/// refuses, or one longer than the model's context, is a 400 naming the field at once — not an error after a wait
/// in the queue. Needs the chat client to offer its <see cref="ChatPrompt"/>, tokenizer and model through
/// GetService; a client without them is checked by its own first update instead.
/// </summary>
internal sealed class PromptLengthCheck(IChatClient client)
{
    private readonly ChatPrompt? _prompt = client.GetService<ChatPrompt>();
    private readonly ITokenizer? _tokenizer = client.GetService<ITokenizer>();
    private readonly int? _context = client.GetService<ICausalLM>()?.Config.MaxPositionEmbeddings;

    /// <summary>The context length in positions when the client exposes its model; else null.</summary>
    public int? ContextLength => _context;

    public void Check(GenerationRequest request, string messagesField)
    {
        if (_prompt == null || _tokenizer == null) return;
        string text;
        try
        {
            text = ChatRequestRenderer.Render(_prompt, request.Messages, request.Options);
        }
        catch (NotSupportedException e) when (request.Options.Tools != null)
        {
            throw OpenAIRequestException.BadField("tools", e.Message);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or FormatException)
        {
            throw OpenAIRequestException.BadField(messagesField, e.Message);
        }
        if (_context is not { } context) return;
        int tokens = _tokenizer.Encode(text).Length;
        if (tokens >= context)
            throw new OpenAIRequestException(400,
                $"'{messagesField}': the prompt is {tokens} tokens; this model's context holds {context} positions, " +
                "so no room is left for an answer", messagesField, code: "context_length_exceeded");
    }
}
