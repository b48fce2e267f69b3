using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using NativeReasoner.RL.Tokenizers;
using PreTokenizer = Microsoft.ML.Tokenizers.PreTokenizer;

namespace NativeReasoner.RL;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c>. Byte-level BPE files (a ByteLevel pre-tokenizer: DeepSeek-V3/R1, Qwen,
/// Llama 3, GPT-2) run on our own <see cref="ByteLevelBpeTokenizer"/>, which matches the reference encoders id for
/// id (Microsoft.ML.Tokenizers mis-splits them on emoji). Other BPE files (no ByteLevel) still go through
/// Microsoft.ML.Tokenizers, which this class then maps the JSON onto (<see cref="BpeOptions"/>).
/// Read for those: <c>model.vocab</c>, <c>model.merges</c> ("a b" strings or [a, b] pairs), <c>model.unk_token</c>,
/// <c>continuing_subword_prefix</c>, <c>end_of_word_suffix</c>, <c>fuse_unk</c>, <c>added_tokens</c> (as special
/// tokens), byte-level mode (a ByteLevel pre-tokenizer or decoder), and the pre-tokenizer's Split regexes
/// (or GPT-2's regex for ByteLevel with use_regex). Normalizers are not applied. BOS/EOS/PAD come from a
/// <c>tokenizer_config.json</c> next to it when present, else from well-known token names.
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    // GPT-2's pre-tokenization pattern (what HF's ByteLevel pre-tokenizer uses when use_regex is true).
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer? _bpe;
    private readonly ByteLevelBpeTokenizer? _byteLevel;
    private readonly string _json;
    private readonly string? _configJson;
    private readonly HashSet<int> _special;

    public int VocabSize { get; }
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }

    /// <summary>The byte-level BPE behind this tokenizer, or null when Microsoft.ML.Tokenizers runs it.</summary>
    public ByteLevelBpeTokenizer? ByteLevel => _byteLevel;

    private HfTokenizer(BpeTokenizer? bpe, ByteLevelBpeTokenizer? byteLevel, string json, string? configJson,
        int vocabSize, int bos, int eos, int pad, HashSet<int> special)
    {
        _bpe = bpe;
        _byteLevel = byteLevel;
        _json = json;
        _configJson = configJson;
        VocabSize = vocabSize;
        BosId = bos;
        EosId = eos;
        PadId = pad;
        _special = special;
    }

    public static HfTokenizer FromJson(string json, string? directory = null)
    {
        string source = directory == null ? "tokenizer.json" : Path.Combine(directory, "tokenizer.json");
        try
        {
            return FromJsonCore(json, directory, source);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or
                                  ArgumentException or FormatException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"{source}: cannot read this Hugging Face tokenizer: {e.Message}", e);
        }
    }

    private static HfTokenizer FromJsonCore(string json, string? directory, string source)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        string? configJson = null;
        string? configPath = directory == null ? null : Path.Combine(directory, "tokenizer_config.json");
        if (configPath != null && File.Exists(configPath)) configJson = File.ReadAllText(configPath);
        if (TokenizerJson.IsByteLevelBpe(root))
            return FromByteLevel(root, json, configJson, source);
        var model = root.GetProperty("model");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "BPE";
        if (type != "BPE")
            throw new NotSupportedException($"{source}: model type '{type}' is not supported; supported: BPE");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();
        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var m))
            foreach (var e in m.EnumerateArray())
                merges.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : $"{e[0].GetString()} {e[1].GetString()}");

        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
                special[a.GetProperty("content").GetString()!] = a.GetProperty("id").GetInt32();

        bool byteLevel = false;
        var patterns = new List<string>();
        void Walk(JsonElement pt)
        {
            if (pt.ValueKind != JsonValueKind.Object) return;
            string ptType = pt.TryGetProperty("type", out var tt) ? tt.GetString() ?? "" : "";
            switch (ptType)
            {
                case "Sequence":
                    foreach (var child in pt.GetProperty("pretokenizers").EnumerateArray()) Walk(child);
                    break;
                case "ByteLevel":
                    byteLevel = true;
                    if (!pt.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False) patterns.Add(Gpt2Pattern);
                    break;
                case "Split":
                    if (pt.GetProperty("pattern").TryGetProperty("Regex", out var rx)) patterns.Add(rx.GetString()!);
                    else if (pt.GetProperty("pattern").TryGetProperty("String", out var str)) patterns.Add(Regex.Escape(str.GetString()!));
                    break;
                case "Whitespace":
                    patterns.Add(@"\w+|[^\w\s]+");
                    break;
                case "WhitespaceSplit":
                    patterns.Add(@"\S+");
                    break;
            }
        }
        if (root.TryGetProperty("pre_tokenizer", out var pre)) Walk(pre);
        // A pattern that matches the empty string never advances Microsoft.ML.Tokenizers' splitter (it loops).
        foreach (var p in patterns)
            if (Regex.IsMatch(string.Empty, p))
                throw new InvalidDataException($"{source}: pre-tokenizer pattern '{p}' matches the empty string; " +
                                               "expected a pattern that matches at least one character");
        if (root.TryGetProperty("decoder", out var dec) && dec.ValueKind == JsonValueKind.Object && dec.TryGetProperty("type", out var dt) && dt.GetString() == "ByteLevel")
            byteLevel = true;

        var options = new BpeOptions(vocab)
        {
            Merges = merges,
            SpecialTokens = special.Count > 0 ? special : null,
            ByteLevel = byteLevel,
            PreTokenizer = patterns.Count switch
            {
                0 => null,
                1 => new RegexPreTokenizer(new Regex(patterns[0], RegexOptions.Compiled), special.Count > 0 ? special : null),
                _ => new CompositePreTokenizer(patterns.Select(p => (PreTokenizer)new RegexPreTokenizer(new Regex(p, RegexOptions.Compiled), null)).ToList(), special.Count > 0 ? special : null),
            },
        };
        if (model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String) options.UnknownToken = unk.GetString();
        if (model.TryGetProperty("continuing_subword_prefix", out var csp) && csp.ValueKind == JsonValueKind.String) options.ContinuingSubwordPrefix = csp.GetString();
        if (model.TryGetProperty("end_of_word_suffix", out var ews) && ews.ValueKind == JsonValueKind.String) options.EndOfWordSuffix = ews.GetString();
        if (model.TryGetProperty("fuse_unk", out var fu) && fu.ValueKind == JsonValueKind.True) options.FuseUnknownTokens = true;

        using var config = configJson == null ? null : ParseConfig(configJson, source);
        var (bos, eos, pad) = SpecialIds(config?.RootElement,
            n => special.TryGetValue(n, out var id) || vocab.TryGetValue(n, out id) ? id : null, source);
        int vocabSize = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max(), special.Count == 0 ? 0 : special.Values.Max()) + 1;
        return new HfTokenizer(BpeTokenizer.Create(options), null, json, configJson, vocabSize, bos, eos, pad,
            special.Values.ToHashSet());
    }

    private static HfTokenizer FromByteLevel(JsonElement root, string json, string? configJson, string source)
    {
        using var config = configJson == null ? null : ParseConfig(configJson, source);
        var tok = TokenizerJson.Parse(root, config?.RootElement, source);
        var (bos, eos, pad) = SpecialIds(config?.RootElement, tok.TokenToId, source);
        var special = tok.AddedTokens.Where(t => t.Special).Select(t => t.Id).ToHashSet();
        return new HfTokenizer(null, tok, json, configJson, tok.VocabSize, bos, eos, pad, special);
    }

    // BOS / EOS / PAD ids: the config's names, else well-known names. A config that sets bos_token to null
    // (Qwen) means no BOS.
    private static (int Bos, int Eos, int Pad) SpecialIds(JsonElement? config, Func<string, int?> lookup, string source)
    {
        int Find(string? name, params string[] fallbacks)
        {
            foreach (var n in (name == null ? fallbacks : [name, .. fallbacks]))
                if (lookup(n) is int id) return id;
            return -1;
        }
        string? Name(string key) => config is { } c ? TokenName(c, key) : null;
        bool bosIsNull = config is { } cfg && cfg.TryGetProperty("bos_token", out var b)
                         && b.ValueKind == JsonValueKind.Null;
        int bos = bosIsNull ? -1
            : Find(Name("bos_token"), "<|bos|>", "<｜begin▁of▁sentence｜>", "<s>", "<|begin_of_text|>", "<|endoftext|>");
        int eos = Find(Name("eos_token"),
            "<|eos|>", "<｜end▁of▁sentence｜>", "</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>");
        if (eos < 0)
            throw new InvalidDataException(
                $"{source}: no end-of-sequence token found (set eos_token in tokenizer_config.json)");
        int pad = Find(Name("pad_token"), "<|pad|>", "<pad>", "<｜▁pad▁｜>");
        return (bos, eos, pad < 0 ? eos : pad);
    }

    private static JsonDocument ParseConfig(string configJson, string source)
    {
        var path = Path.Combine(Path.GetDirectoryName(source) ?? "", "tokenizer_config.json");
        var doc = IO.StrictJson.Parse(configJson, path);
        if (doc.RootElement.ValueKind == JsonValueKind.Object) return doc;
        doc.Dispose();
        throw new InvalidDataException($"{path}: expected a JSON object");
    }

    private static string? TokenName(JsonElement cfg, string key)
    {
        if (!cfg.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String =>
                c.GetString(),
            _ => null,
        };
    }

    public int[] Encode(string text) => _byteLevel != null ? _byteLevel.Encode(text) : EncodeWithLibrary(text);

    /// <summary>Microsoft.ML.Tokenizers' encoder; it fails with an index error on some pre-tokenizer sequences
    /// (a Split whose pieces overlap the next pre-tokenizer's), which is the file's fault, so it is named.</summary>
    private int[] EncodeWithLibrary(string text)
    {
        try
        {
            return _bpe!.EncodeToIds(text).ToArray();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new InvalidDataException("tokenizer.json: Microsoft.ML.Tokenizers cannot split text with this " +
                                           $"file's pre-tokenizers ({e.Message})", e);
        }
    }

    public int[] Encode(string text, bool addSpecialTokens, bool parseSpecialTokens = true)
    {
        if (_byteLevel != null) return _byteLevel.Encode(text, addSpecialTokens, parseSpecialTokens);
        if (!parseSpecialTokens)
            throw new NotSupportedException(
                "this tokenizer.json is not byte-level BPE: Microsoft.ML.Tokenizers always parses special tokens");
        var ids = Encode(text);
        return addSpecialTokens && BosId >= 0 ? [BosId, .. ids] : ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) =>
        _byteLevel != null ? _byteLevel.Decode(ids, skipSpecialTokens)
        : _bpe!.Decode(skipSpecialTokens ? ids.Where(i => !_special.Contains(i)) : ids) ?? "";

    public string? IdToToken(int id) => _byteLevel != null ? _byteLevel.IdToToken(id) : _bpe!.Decode([id]);

    public int? TokenToId(string token)
    {
        if (_byteLevel != null) return _byteLevel.TokenToId(token);
        if (_bpe!.SpecialTokens != null && _bpe.SpecialTokens.TryGetValue(token, out var s)) return s;
        return _bpe.Vocabulary.TryGetValue(token, out var id) ? id : null;
    }

    /// <summary>Writes the original tokenizer.json (and tokenizer_config.json when one was read) unchanged.</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, TokenizerLoader.FileName), _json);
        if (_configJson != null) File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), _configJson);
    }
}
