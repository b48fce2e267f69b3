using Microsoft.Extensions.AI;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.RL.Chat;

namespace NativeReasoner.Serving;

/// <summary>
/// Turns one request's generated token ids into <see cref="ChatResponseUpdate"/>s as they come: decoded text (held
/// while a byte-level token ends mid-character), cut at the first stop sequence, split into reasoning
/// (<see cref="TextReasoningContent"/>) and answer (<see cref="TextContent"/>) by <see cref="ThinkingStream"/>,
/// and — when the template uses the Qwen format and tools were offered — tool calls pulled out of the answer into
/// <see cref="FunctionCallContent"/>. <see cref="Finish"/> sends the last update with the usage and finish reason.
/// </summary>
public sealed class ResponseAssembler
{
    private readonly ITokenizer _tokenizer;
    private readonly Action<ChatResponseUpdate> _send;
    private readonly UpdateStamp _stamp;
    private readonly StopSequenceFilter _stop;
    private readonly ThinkingStream _thinking;
    private readonly QwenToolCalls? _toolCalls;
    private readonly List<int> _generated = [];
    private int _emitted;
    private int _tokensBeforeAnswer;

    /// <summary>What every update of one response carries.</summary>
    public sealed record UpdateStamp(string ResponseId, string MessageId, string? ModelId, DateTimeOffset CreatedAt);

    public ResponseAssembler(ITokenizer tokenizer, string promptText, IEnumerable<string>? stopSequences,
        bool parseToolCalls, UpdateStamp stamp, Action<ChatResponseUpdate> send)
    {
        _tokenizer = tokenizer;
        _send = send;
        _stamp = stamp;
        _stop = new StopSequenceFilter(stopSequences);
        _thinking = new ThinkingStream(ThinkingSplit.PromptForcesThinking(promptText));
        _toolCalls = parseToolCalls ? new QwenToolCalls() : null;
    }

    /// <summary>One generated token (the end-of-sequence token adds no text).</summary>
    public void OnToken(long id)
    {
        if (id == _tokenizer.EosId) return;
        if (!_thinking.InAnswer) _tokensBeforeAnswer++;
        _generated.Add(checked((int)id));
        var text = _tokenizer.Decode(_generated);
        // A byte-level tokenizer may end mid-character: wait for the rest of it.
        if (text.EndsWith('\uFFFD') || text.Length <= _emitted) return;
        Emit(_stop.Push(text[_emitted..]));
        _emitted = text.Length;
    }

    /// <summary>
    /// The end of generation: releases held text, then the final update (usage — with the prompt tokens served from a
    /// cached prefix — and the finish reason).
    /// </summary>
    public void Finish(FinishReason reason, int inputTokens, int outputTokens, int cachedInputTokens = 0)
    {
        var text = _tokenizer.Decode(_generated);
        if (text.Length > _emitted) Emit(_stop.Push(text[_emitted..]));
        Emit(_stop.Finish());
        Send(_thinking.Finish());
        var contents = new List<AIContent>();
        if (_toolCalls != null)
        {
            var (calls, rest) = _toolCalls.Finish();
            if (rest.Length > 0) contents.Add(new TextContent(rest));
            contents.AddRange(calls);
        }
        var parts = _thinking.Result;
        int reasoningTokens = !parts.HasThinking ? 0 : parts.ThinkingClosed ? _tokensBeforeAnswer : outputTokens;
        contents.Add(new UsageContent(new UsageDetails
        {
            InputTokenCount = inputTokens,
            OutputTokenCount = outputTokens,
            TotalTokenCount = inputTokens + outputTokens,
            ReasoningTokenCount = reasoningTokens,
            CachedInputTokenCount = cachedInputTokens,
        }));
        var update = NewUpdate(contents);
        update.FinishReason = contents.OfType<FunctionCallContent>().Any() ? ChatFinishReason.ToolCalls
            : reason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;
        _send(update);
    }

    private void Emit(string piece)
    {
        if (piece.Length > 0) Send(_thinking.Push(piece));
    }

    private void Send(ThinkingDelta delta)
    {
        var contents = new List<AIContent>();
        if (delta.Reasoning.Length > 0) contents.Add(new TextReasoningContent(delta.Reasoning));
        var answer = _toolCalls != null ? _toolCalls.Push(delta.Answer) : delta.Answer;
        if (answer.Length > 0) contents.Add(new TextContent(answer));
        if (contents.Count > 0) _send(NewUpdate(contents));
    }

    private ChatResponseUpdate NewUpdate(List<AIContent> contents) => new(ChatRole.Assistant, contents)
    {
        ResponseId = _stamp.ResponseId,
        MessageId = _stamp.MessageId,
        ModelId = _stamp.ModelId,
        CreatedAt = _stamp.CreatedAt,
    };
}
