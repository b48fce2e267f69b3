using System.Text;

namespace NativeReasoner.RL.Chat;

/// <summary>What one piece of streamed output added to the reasoning and to the answer.</summary>
public readonly record struct ThinkingDelta(string Reasoning, string Answer)
{
    public bool IsEmpty => Reasoning.Length == 0 && Answer.Length == 0;
}

/// <summary>
/// <see cref="ThinkingSplit"/> for streamed text: feed decoded pieces as they come, print the deltas. Text that
/// could still turn out to be a tag (<c>"&lt;/thi"</c>) or whitespace that may end the reasoning is held back
/// until the next piece decides it; <see cref="Finish"/> releases it. The concatenated deltas equal
/// <see cref="ThinkingSplit.Split"/> of the whole text whenever the output starts with <c>&lt;think&gt;</c>, has no
/// tags, or <c>thinkingForced</c> is set (outputs holding only <c>&lt;/think&gt;</c> need it: the stream cannot look
/// back).
/// </summary>
public sealed class ThinkingStream
{
    private enum State { Start, Thinking, AfterClose, Answer }

    private readonly StringBuilder _pending = new();
    private readonly StringBuilder _reasoning = new();
    private readonly StringBuilder _answer = new();
    private State _state;
    private bool _hasThinking;
    private bool _closed;
    private bool _dropOpenTag;

    /// <param name="thinkingForced">
    /// The prompt ended inside a thinking block (see <see cref="ThinkingSplit.PromptForcesThinking"/>).
    /// </param>
    public ThinkingStream(bool thinkingForced = false)
    {
        if (thinkingForced)
        {
            _state = State.Thinking;
            _hasThinking = true;
            _dropOpenTag = true;
        }
    }

    /// <summary>The split so far (complete after <see cref="Finish"/>).</summary>
    public ThinkingParts Result => new(_reasoning.ToString(), _answer.ToString(), _hasThinking, _closed);

    /// <summary>True once the reasoning has ended and the answer is streaming.</summary>
    public bool InAnswer => _state is State.Answer or State.AfterClose;

    public ThinkingDelta Push(string piece)
    {
        _pending.Append(piece);
        return Drain(final: false);
    }

    /// <summary>The end of the output: releases held-back text.</summary>
    public ThinkingDelta Finish() => Drain(final: true);

    private ThinkingDelta Drain(bool final)
    {
        var reasoning = new StringBuilder();
        var answer = new StringBuilder();
        while (true)
        {
            string text = _pending.ToString();
            switch (_state)
            {
                case State.Start:
                    {
                        string trimmed = text.TrimStart();
                        if (trimmed.StartsWith(ThinkingSplit.Open, StringComparison.Ordinal))
                        {
                            _pending.Remove(0, text.Length - trimmed.Length + ThinkingSplit.Open.Length);
                            _state = State.Thinking;
                            _hasThinking = true;
                            continue;
                        }
                        if (!final && ThinkingSplit.Open.StartsWith(trimmed, StringComparison.Ordinal))
                            return Done(reasoning, answer);
                        _state = State.Answer;
                        continue;
                    }
                case State.Thinking:
                    {
                        if (_dropOpenTag)
                        {
                            // Forced thinking, and the model wrote the tag anyway: drop it, as the one-piece split does.
                            string trimmed = text.TrimStart();
                            if (!final && trimmed.Length < ThinkingSplit.Open.Length
                                && ThinkingSplit.Open.StartsWith(trimmed, StringComparison.Ordinal))
                                return Done(reasoning, answer);
                            _dropOpenTag = false;
                            if (trimmed.StartsWith(ThinkingSplit.Open, StringComparison.Ordinal))
                                _pending.Remove(0, text.Length - trimmed.Length + ThinkingSplit.Open.Length);
                            continue;
                        }
                        int close = text.IndexOf(ThinkingSplit.Close, StringComparison.Ordinal);
                        if (close >= 0)
                        {
                            EmitReasoning(reasoning, text[..close].TrimEnd());
                            _pending.Remove(0, close + ThinkingSplit.Close.Length);
                            _state = State.AfterClose;
                            _closed = true;
                            continue;
                        }
                        // Hold back trailing whitespace (it may precede </think>) and a possible start of the tag.
                        int keep = final ? text.Length : SafeLength(text);
                        EmitReasoning(reasoning, final ? text.TrimEnd() : text[..keep]);
                        _pending.Remove(0, keep);
                        return Done(reasoning, answer);
                    }
                case State.AfterClose:
                    {
                        string trimmed = text.TrimStart();
                        _pending.Remove(0, text.Length - trimmed.Length);
                        if (trimmed.Length == 0) return Done(reasoning, answer);
                        _state = State.Answer;
                        continue;
                    }
                default:
                    answer.Append(text);
                    _answer.Append(text);
                    _pending.Clear();
                    return Done(reasoning, answer);
            }
        }
    }

    private static ThinkingDelta Done(StringBuilder reasoning, StringBuilder answer) =>
        new(reasoning.ToString(), answer.ToString());

    /// <summary>How much of <paramref name="text"/> can be released: not trailing whitespace, not a prefix of
    /// "&lt;/think&gt;".</summary>
    private static int SafeLength(string text)
    {
        int end = text.Length;
        for (int n = Math.Min(ThinkingSplit.Close.Length - 1, text.Length); n > 0; n--)
            if (ThinkingSplit.Close.StartsWith(text[^n..], StringComparison.Ordinal))
            {
                end = text.Length - n;
                break;
            }
        while (end > 0 && char.IsWhiteSpace(text[end - 1])) end--;
        return end;
    }

    /// <summary>Reasoning text; leading whitespace of the whole reasoning is dropped.</summary>
    private void EmitReasoning(StringBuilder delta, string text)
    {
        if (_reasoning.Length == 0) text = text.TrimStart();
        delta.Append(text);
        _reasoning.Append(text);
    }
}
