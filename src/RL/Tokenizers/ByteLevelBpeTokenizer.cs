// Source: the encode / decode pipeline of Hugging Face tokenizers (tokenizers/src/tokenizer/mod.rs): added tokens →
// normalizer → pre-tokenizer → BPE model → post-processor; decode through the ByteLevel decoder.
using System.Text;

namespace NativeReasoner.RL.Tokenizers;

/// <summary>
/// A byte-level BPE tokenizer (GPT-2 style: DeepSeek-V3/R1, Qwen2.5/Qwen3, Llama 3) built from a tokenizer.json
/// by <see cref="TokenizerJson"/>. Encoding: added tokens are cut out of the raw text (those marked
/// <c>normalized</c> out of the normalized text), the rest is normalized, pre-tokenized, mapped to bytes and
/// merged by the BPE model; the post-processor adds BOS &amp; co. on request. Thread-safe.
/// </summary>
public sealed class ByteLevelBpeTokenizer
{
    private readonly AddedTokenMatcher _rawAdded, _normalizedAdded;
    private readonly AddedToken?[] _addedById;
    private readonly string?[] _idToToken;
    private readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);

    [ThreadStatic] private static byte[]? t_bytes;
    [ThreadStatic] private static char[]? t_chars;

    public BpeModel Model { get; }
    public Normalizer? Normalizer { get; }
    public PreTokenizer? PreTokenizer { get; }
    public PostProcessor? PostProcessor { get; }
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>Whether decoding applies transformers' clean_up_tokenization (tokenizer_config.json).</summary>
    public bool CleanUpTokenizationSpaces { get; }

    /// <summary>Largest id + 1 over the vocabulary and the added tokens.</summary>
    public int VocabSize => _idToToken.Length;

    public ByteLevelBpeTokenizer(BpeModel model, Normalizer? normalizer, PreTokenizer? preTokenizer,
        PostProcessor? postProcessor, IReadOnlyList<AddedToken> addedTokens, bool cleanUpTokenizationSpaces)
    {
        Model = model;
        Normalizer = normalizer is SequenceNormalizer { Normalizers.Count: 0 } ? null : normalizer;
        PreTokenizer = preTokenizer;
        PostProcessor = postProcessor;
        AddedTokens = addedTokens;
        CleanUpTokenizationSpaces = cleanUpTokenizationSpaces;
        // Without a normalizer, "normalized" tokens would be looked for in the same text: one pass finds both.
        _rawAdded = new AddedTokenMatcher(Normalizer == null ? addedTokens : addedTokens.Where(t => !t.Normalized));
        _normalizedAdded = new AddedTokenMatcher(Normalizer == null ? [] : addedTokens.Where(t => t.Normalized));
        // Ids index the lookup tables below, so a negative or absurd id (a damaged file) must not size them. Real
        // tokenizers number their tokens densely; gaps up to a few times the token count are allowed.
        long limit = 4L * (model.Vocabulary.Count + addedTokens.Count) + 65536;
        int size = 0;
        foreach (var (token, id) in model.Vocabulary) size = Math.Max(size, CheckedId(id, token, "model.vocab") + 1);
        foreach (var t in addedTokens) size = Math.Max(size, CheckedId(t.Id, t.Content, "added_tokens") + 1);
        int CheckedId(int id, string token, string where) => id >= 0 && id < limit ? id
            : throw new InvalidDataException($"{where}: token '{(token.Length <= 40 ? token : token[..40] + "…")}' " +
                                             $"has id {id}; ids must be in [0, {limit}) for " +
                                             $"{model.Vocabulary.Count + addedTokens.Count} tokens");
        _idToToken = new string?[size];
        _addedById = new AddedToken?[size];
        foreach (var (token, id) in model.Vocabulary) _idToToken[id] = token;
        foreach (var t in addedTokens)
        {
            _idToToken[t.Id] = t.Content;
            _addedById[t.Id] = t;
            _addedByContent.TryAdd(t.Content, t);
        }
    }

    /// <summary>The token string of an id (byte-level characters for vocabulary tokens), or null.</summary>
    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string token)
    {
        return _addedByContent.TryGetValue(token, out var added) ? added.Id : Model.TokenToId(token);
    }

    public bool IsSpecial(int id) => id >= 0 && id < _addedById.Length && _addedById[id] is { Special: true };

    /// <param name="addSpecialTokens">Run the post-processor (BOS etc.).</param>
    /// <param name="parseSpecialTokens">Special-token strings in the text become their ids (else they are
    /// text).</param>
    public int[] Encode(string text, bool addSpecialTokens = false, bool parseSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        var segments = new List<AddedTokenSegment>();
        var inner = new List<AddedTokenSegment>();
        var pieces = new List<TextPiece>();
        var scratch = new List<TextPiece>();
        _rawAdded.Split(text, parseSpecialTokens, segments);
        foreach (var segment in segments)
        {
            if (segment.Token != null) { ids.Add(segment.Token.Id); continue; }
            if (Normalizer == null)
            {
                EncodePlain(new TextPiece(text, segment.Start, segment.Length), ids, pieces, scratch);
                continue;
            }
            string normalized = Normalizer.Normalize(text.Substring(segment.Start, segment.Length));
            inner.Clear();
            _normalizedAdded.Split(normalized, parseSpecialTokens, inner);
            foreach (var s in inner)
                if (s.Token != null) ids.Add(s.Token.Id);
                else EncodePlain(new TextPiece(normalized, s.Start, s.Length), ids, pieces, scratch);
        }
        if (addSpecialTokens && PostProcessor != null) ids = PostProcessor.Process(ids);
        return ids.ToArray();
    }

    private void EncodePlain(TextPiece text, List<int> ids, List<TextPiece> pieces, List<TextPiece> scratch)
    {
        if (text.Length == 0) return;
        pieces.Clear();
        pieces.Add(text);
        PreTokenizer?.SplitAll(pieces, scratch);
        foreach (var piece in pieces)
        {
            // piece → UTF-8 bytes (a lone surrogate becomes U+FFFD's bytes) → the byte-level alphabet
            int maxBytes = piece.Length * 3;
            var bytes = t_bytes is { } b && b.Length >= maxBytes ? b : t_bytes = new byte[Math.Max(maxBytes, 1024)];
            var chars = t_chars is { } c && c.Length >= maxBytes ? c : t_chars = new char[Math.Max(maxBytes, 1024)];
            int n = Encoding.UTF8.GetBytes(piece.Span, bytes);
            var alphabet = ByteLevelAlphabet.ByteToChar;
            for (int i = 0; i < n; i++) chars[i] = alphabet[bytes[i]];
            Model.Encode(chars.AsSpan(0, n), ids);
        }
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (id < 0) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is negative");
            // An id past the tokenizer (a model's vocab_size is often padded) decodes to nothing, as in HF's Rust.
            var token = IdToToken(id);
            if (token == null) continue;
            var added = _addedById[id];
            if (added == null) { ByteLevelDecoder.AppendBytes(token, bytes); continue; }
            if (added.Special && skipSpecialTokens) continue;
            ByteLevelDecoder.Flush(bytes, text);
            text.Append(added.Content);
        }
        ByteLevelDecoder.Flush(bytes, text);
        var result = text.ToString();
        return CleanUpTokenizationSpaces ? ByteLevelDecoder.CleanUpTokenization(result) : result;
    }
}
