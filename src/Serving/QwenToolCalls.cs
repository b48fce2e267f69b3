using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace NativeReasoner.Serving;

/// <summary>
/// The Qwen2.5 / Qwen3 tool-call format in an answer:
/// <c>&lt;tool_call&gt;{"name": …, "arguments": {…}}&lt;/tool_call&gt;</c> blocks (the chat templates of those
/// families print this form in their system prompt). Streamed answer text passes through until a block may begin;
/// from there on it is held back and parsed at the end into <see cref="FunctionCallContent"/>s. A block that is not
/// valid JSON with a "name" stays text.
/// </summary>
public sealed class QwenToolCalls
{
    public const string Open = "<tool_call>";
    public const string Close = "</tool_call>";

    private readonly StringBuilder _held = new();
    private bool _holding;
    private int _calls;

    /// <summary>True when the template prints the Qwen tool-call format (so its models were trained on it).</summary>
    public static bool TemplateUses(string templateSource) =>
        templateSource.Contains(Open, StringComparison.Ordinal);

    /// <summary>Answer text that cannot belong to a tool call.</summary>
    public string Push(string piece)
    {
        if (_holding)
        {
            _held.Append(piece);
            return "";
        }
        string text = _held.Append(piece).ToString();
        _held.Clear();
        int open = text.IndexOf(Open, StringComparison.Ordinal);
        if (open >= 0)
        {
            _holding = true;
            _held.Append(text, open, text.Length - open);
            return text[..open];
        }
        // Hold back a tail that may be the start of "<tool_call>".
        for (int n = Math.Min(Open.Length - 1, text.Length); n > 0; n--)
            if (string.CompareOrdinal(text, text.Length - n, Open, 0, n) == 0)
            {
                _held.Append(text, text.Length - n, n);
                return text[..^n];
            }
        return text;
    }

    /// <summary>The end of the answer: the calls found in the held-back text and the text that is not a call.</summary>
    public (IReadOnlyList<FunctionCallContent> Calls, string Text) Finish()
    {
        string text = _held.ToString();
        _held.Clear();
        _holding = false;
        var calls = new List<FunctionCallContent>();
        var rest = new StringBuilder();
        int at = 0;
        while (at < text.Length)
        {
            int open = text.IndexOf(Open, at, StringComparison.Ordinal);
            if (open < 0) break;
            int close = text.IndexOf(Close, open + Open.Length, StringComparison.Ordinal);
            string body = close < 0 ? text[(open + Open.Length)..] : text[(open + Open.Length)..close];
            int end = close < 0 ? text.Length : close + Close.Length;
            if (Parse(body) is { } call)
            {
                rest.Append(text, at, open - at);
                calls.Add(call);
            }
            else rest.Append(text, at, end - at);
            at = end;
        }
        if (at < text.Length) rest.Append(text, at, text.Length - at);
        return (calls, calls.Count > 0 ? rest.ToString().Trim() : rest.ToString());
    }

    private FunctionCallContent? Parse(string body)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(body);
            root = doc.RootElement.Clone();
        }
        catch (JsonException) { return null; }
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("name", out var name)
            || name.ValueKind != JsonValueKind.String)
            return null;
        Dictionary<string, object?>? arguments = null;
        if (root.TryGetProperty("arguments", out var args) && args.ValueKind == JsonValueKind.Object)
        {
            arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var p in args.EnumerateObject()) arguments[p.Name] = p.Value;
        }
        return new FunctionCallContent($"call_{_calls++}_{Guid.NewGuid():N}", name.GetString()!, arguments);
    }
}
