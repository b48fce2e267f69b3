// Source: Hugging Face tokenizers' AddedVocabulary (tokenizers/src/tokenizer/added_vocabulary.rs): added tokens are
// found in the text before the model runs, leftmost first and longest first, and are kept whole.
using System.Buffers;

namespace NativeReasoner.RL.Tokenizers;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>.</summary>
/// <param name="Special">Special tokens can be skipped when decoding and left unparsed when encoding.</param>
/// <param name="SingleWord">Only matches when no letter, digit or '_' touches it on either side.</param>
/// <param name="LStrip">Swallows the whitespace before it.</param>
/// <param name="RStrip">Swallows the whitespace after it.</param>
/// <param name="Normalized">Matched in the normalized text (true) or in the raw text (false).</param>
public sealed record AddedToken(string Content, int Id, bool Special, bool SingleWord = false, bool LStrip = false,
    bool RStrip = false, bool Normalized = false);

/// <summary>A segment of text: either plain text or one added token (with the whitespace it strips).</summary>
public readonly record struct AddedTokenSegment(int Start, int Length, AddedToken? Token);

/// <summary>Finds added tokens in text with a character trie: leftmost match first, then the longest.</summary>
public sealed class AddedTokenMatcher
{
    private sealed class Node
    {
        public Dictionary<char, Node>? Children;
        public AddedToken? Token;
    }

    private readonly Node _root = new();
    private readonly SearchValues<char> _firstChars;

    public IReadOnlyList<AddedToken> Tokens { get; }

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        var list = tokens.Where(t => t.Content.Length > 0).ToList();
        Tokens = list;
        foreach (var t in list)
        {
            var node = _root;
            foreach (char c in t.Content)
            {
                node.Children ??= new Dictionary<char, Node>();
                if (!node.Children.TryGetValue(c, out var child)) node.Children[c] = child = new Node();
                node = child;
            }
            node.Token ??= t; // the same content twice: the first entry wins
        }
        _firstChars = SearchValues.Create(list.Select(t => t.Content[0]).Distinct().ToArray());
    }

    /// <summary>
    /// Cuts <paramref name="text"/> into plain segments and added-token segments, appended in order.
    /// With <paramref name="includeSpecial"/> false, special tokens are not looked for (they stay text).
    /// </summary>
    public void Split(ReadOnlySpan<char> text, bool includeSpecial, List<AddedTokenSegment> output)
    {
        int plainStart = 0, from = 0;
        while (from < text.Length)
        {
            int rel = text[from..].IndexOfAny(_firstChars);
            if (rel < 0) break;
            int at = from + rel;
            var token = LongestAt(text, at, includeSpecial);
            if (token == null) { from = at + 1; continue; }
            int start = at, end = at + token.Content.Length;
            if (token.LStrip) while (start > plainStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (start > plainStart) output.Add(new AddedTokenSegment(plainStart, start - plainStart, null));
            output.Add(new AddedTokenSegment(start, end - start, token));
            plainStart = from = end;
        }
        if (plainStart < text.Length) output.Add(new AddedTokenSegment(plainStart, text.Length - plainStart, null));
    }

    private AddedToken? LongestAt(ReadOnlySpan<char> text, int at, bool includeSpecial)
    {
        AddedToken? best = null;
        var node = _root;
        for (int i = at; i < text.Length; i++)
        {
            if (node.Children == null || !node.Children.TryGetValue(text[i], out node)) break;
            var t = node.Token;
            if (t == null || (t.Special && !includeSpecial)) continue;
            bool touchesWord = at > 0 && IsWordChar(text[at - 1]) || i + 1 < text.Length && IsWordChar(text[i + 1]);
            if (t.SingleWord && touchesWord) continue;
            best = t;
        }
        return best;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
