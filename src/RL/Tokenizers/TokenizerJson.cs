// Source: the tokenizer.json format of Hugging Face tokenizers (tokenizers/src/tokenizer/serialization.rs and the
// serde forms of each component) and the tokenizer_config.json keys transformers reads (add_bos_token,
// add_eos_token, clean_up_tokenization_spaces, tokenizer_class; LlamaTokenizerFast.update_post_processor).
using System.Text;
using System.Text.Json;

namespace NativeReasoner.RL.Tokenizers;

/// <summary>Builds a <see cref="ByteLevelBpeTokenizer"/> from tokenizer.json (+ tokenizer_config.json).</summary>
public static class TokenizerJson
{
    // transformers' Llama-family fast tokenizers rebuild the post-processor from add_bos_token / add_eos_token,
    // whatever tokenizer.json says (LlamaTokenizerFast.update_post_processor and its copies).
    private static readonly HashSet<string> BosFromConfigClasses =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer",
            "GemmaTokenizerFast"];

    /// <summary>
    /// True when tokenizer.json is a BPE whose pre-tokenizer contains ByteLevel — what this implementation
    /// runs. Other tokenizer.json files (WordPiece, SentencePiece-style BPE) are left to Microsoft.ML.Tokenizers.
    /// </summary>
    public static bool IsByteLevelBpe(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model)) return false;
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : "BPE";
        return type == "BPE" && root.TryGetProperty("pre_tokenizer", out var pre) && ContainsType(pre, "ByteLevel");
    }

    private static bool ContainsType(JsonElement e, string type)
    {
        if (e.ValueKind != JsonValueKind.Object) return false;
        if (e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            && t.GetString() == type) return true;
        return e.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array
            && list.EnumerateArray().Any(c => ContainsType(c, type));
    }

    /// <param name="source">The file name used in error messages.</param>
    public static ByteLevelBpeTokenizer Parse(JsonElement root, JsonElement? config, string source)
    {
        try
        {
            return ParseCore(root, config);
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException
                                  or InvalidDataException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }

    private static ByteLevelBpeTokenizer ParseCore(JsonElement root, JsonElement? config)
    {
        var model = Required(root, "model", "the BPE model section");
        var added = ParseAddedTokens(root);
        var bpe = ParseModel(model);
        var normalizer = root.TryGetProperty("normalizer", out var n) ? ParseNormalizer(n) : null;
        var pre = ParsePreTokenizer(Required(root, "pre_tokenizer", "a pre-tokenizer with ByteLevel"), isLast: true);
        var post = root.TryGetProperty("post_processor", out var p) ? ParsePostProcessor(p, added, bpe) : null;
        bool cleanUp = false;
        if (config is { ValueKind: JsonValueKind.Object } cfg)
        {
            cleanUp = cfg.TryGetProperty("clean_up_tokenization_spaces", out var c)
                && c.ValueKind == JsonValueKind.True;
            string? cls = cfg.TryGetProperty("tokenizer_class", out var k) && k.ValueKind == JsonValueKind.String
                ? k.GetString() : null;
            if (cls != null && BosFromConfigClasses.Contains(cls))
                post = BosEosFromConfig(cfg, added, bpe);
        }
        return new ByteLevelBpeTokenizer(bpe, normalizer, pre, post, added, cleanUp);
    }

    private static JsonElement Required(JsonElement e, string key, string what)
    {
        if (!e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new InvalidDataException($"missing \"{key}\" ({what})");
        return v;
    }

    private static string TypeOf(JsonElement e, string where)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("type", out var t)
            || t.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: expected an object with a \"type\"");
        return t.GetString()!;
    }

    private static bool Flag(JsonElement e, string key, bool fallback) =>
        e.TryGetProperty(key, out var v) ? v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => fallback
        } : fallback;

    private static List<AddedToken> ParseAddedTokens(JsonElement root)
    {
        var list = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var a) || a.ValueKind == JsonValueKind.Null) return list;
        foreach (var e in a.EnumerateArray())
        {
            bool special = Flag(e, "special", false);
            list.Add(new AddedToken(Required(e, "content", "added token text").GetString()!, Required(e, "id",
                "added token id").GetInt32(),
                special, Flag(e, "single_word", false), Flag(e, "lstrip", false), Flag(e, "rstrip", false),
                Flag(e, "normalized", !special)));
        }
        return list;
    }

    private static BpeModel ParseModel(JsonElement model)
    {
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : "BPE";
        if (type != "BPE") throw new NotSupportedException($"model type '{type}' is not supported here; expected BPE");
        if (model.TryGetProperty("dropout", out var d) && d.ValueKind == JsonValueKind.Number && d.GetDouble() > 0)
            throw new NotSupportedException($"BPE dropout {d.GetDouble()} is not supported (inference tokenizers " +
                $"have dropout null)");
        foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (model.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String
                && v.GetString()!.Length > 0)
                throw new NotSupportedException($"BPE {key} '{v.GetString()}' is not supported with byte-level BPE; " +
                    $"expected null or \"\"");
        if (Flag(model, "byte_fallback", false))
            throw new NotSupportedException("BPE byte_fallback is not supported with byte-level BPE (every byte is " +
                "already in the alphabet)");
        var vocabElement = Required(model, "vocab", "token → id map");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocabElement.EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();
        var merges = new List<(string, string)>();
        if (model.TryGetProperty("merges", out var m) && m.ValueKind == JsonValueKind.Array)
        {
            int rank = 0;
            foreach (var e in m.EnumerateArray())
            {
                if (e.ValueKind == JsonValueKind.String)
                {
                    var s = e.GetString()!;
                    int space = s.IndexOf(' ', 1); // a part may not be empty, and byte-level parts contain no space
                    if (space < 0 || space == s.Length - 1)
                        throw new InvalidDataException($"BPE merge #{rank} \"{s}\": expected \"left right\"");
                    merges.Add((s[..space], s[(space + 1)..]));
                }
                else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2)
                    merges.Add((e[0].GetString()!, e[1].GetString()!));
                else
                    throw new InvalidDataException($"BPE merge #{rank}: expected \"left right\" or [\"left\", " +
                        $"\"right\"], got {e.GetRawText()}");
                rank++;
            }
        }
        string? unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String
            ? u.GetString() : null;
        return new BpeModel(vocab, merges, unk, Flag(model, "ignore_merges", false), Flag(model, "fuse_unk", false));
    }

    private static Normalizer? ParseNormalizer(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        string type = TypeOf(e, "normalizer");
        return type switch
        {
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Sequence" => new SequenceNormalizer(Required(e, "normalizers", "normalizer list").EnumerateArray()
                .Select(ParseNormalizer).OfType<Normalizer>().ToList()),
            _ => throw new NotSupportedException($"normalizer type '{type}' is not supported; supported: NFC, NFD, " +
                $"NFKC, NFKD, Lowercase, Sequence"),
        };
    }

    private static PreTokenizer ParsePreTokenizer(JsonElement e, bool isLast)
    {
        string type = TypeOf(e, "pre_tokenizer");
        switch (type)
        {
            case "Sequence":
                {
                    var items = Required(e, "pretokenizers", "pre-tokenizer list").EnumerateArray().ToList();
                    return new SequencePreTokenizer(items.Select((c, i) => ParsePreTokenizer(c,
                        isLast && i == items.Count - 1)).ToList());
                }
            case "ByteLevel":
                if (!isLast)
                    throw new NotSupportedException("a ByteLevel pre-tokenizer must be the last pre-tokenizer (it " +
                        "maps the text to bytes)");
                return new ByteLevelPreTokenizer(Flag(e, "add_prefix_space", true), Flag(e, "use_regex", true));
            case "Split":
                {
                    var pattern = Required(e, "pattern", "Split pattern");
                    string regex = pattern.TryGetProperty("Regex", out var r)
                            ? r.GetString() ?? throw new InvalidDataException("Split pattern: \"Regex\" is null; " +
                                                                              "expected a string")
                        : pattern.TryGetProperty("String", out var s)
                            ? System.Text.RegularExpressions.Regex.Escape(s.GetString() ??
                                throw new InvalidDataException("Split pattern: \"String\" is null; expected a string"))
                        : throw new InvalidDataException("Split pattern: expected {\"Regex\": …} or {\"String\": …}");
                    // An empty pattern matches nowhere and everywhere: splitting on it never advances.
                    if (regex.Length == 0)
                        throw new InvalidDataException("Split pattern: expected a non-empty regex or string, got \"\"");
                    string behaviorName = e.TryGetProperty("behavior", out var b) ? b.GetString()! : "Isolated";
                    if (!Enum.TryParse<SplitBehavior>(behaviorName, out var behavior))
                        throw new InvalidDataException($"Split behavior '{behaviorName}' is unknown; expected one of " +
                            $"{string.Join(", ", Enum.GetNames<SplitBehavior>())}");
                    return new SplitPreTokenizer(new CodePointRegex(regex), behavior, Flag(e, "invert", false));
                }
            case "Digits":
                return new DigitsPreTokenizer(Flag(e, "individual_digits", false));
            default:
                throw new NotSupportedException($"pre-tokenizer type '{type}' is not supported with byte-level BPE; " +
                    $"supported: Sequence, Split, Digits, ByteLevel");
        }
    }

    private static int IdOf(string token, List<AddedToken> added, BpeModel bpe, string where)
    {
        foreach (var t in added) if (t.Content == token) return t.Id;
        return bpe.TokenToId(token)
            ?? throw new InvalidDataException($"{where}: token '{token}' is neither an added token nor in the " +
                $"vocabulary");
    }

    private static PostProcessor? ParsePostProcessor(JsonElement e, List<AddedToken> added, BpeModel bpe)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        string type = TypeOf(e, "post_processor");
        switch (type)
        {
            case "ByteLevel":
                return new ByteLevelPostProcessor();
            case "Sequence":
                return new SequencePostProcessor(Required(e, "processors", "post-processor list").EnumerateArray()
                    .Select(p => ParsePostProcessor(p, added, bpe)).OfType<PostProcessor>().ToList());
            case "TemplateProcessing":
                {
                    var specials = new Dictionary<string, int[]>();
                    if (e.TryGetProperty("special_tokens", out var st))
                        foreach (var p in st.EnumerateObject())
                            specials[p.Name] = Required(p.Value, "ids",
                                "special token ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                    var single = new List<int[]?>();
                    foreach (var item in Required(e, "single", "single-sequence template").EnumerateArray())
                    {
                        if (item.TryGetProperty("Sequence", out var seq))
                        {
                            string id = Required(seq, "id", "sequence name").GetString()!;
                            if (id != "A") throw new InvalidDataException($"TemplateProcessing single template names " +
                                $"sequence '{id}'; expected A");
                            single.Add(null);
                        }
                        else if (item.TryGetProperty("SpecialToken", out var sp))
                        {
                            string id = Required(sp, "id", "special token name").GetString()!;
                            single.Add(specials.TryGetValue(id, out var ids) ? ids : [IdOf(id, added, bpe,
                            "TemplateProcessing")]);
                        }
                        else throw new InvalidDataException($"TemplateProcessing item {item.GetRawText()}: expected " +
                            $"Sequence or SpecialToken");
                    }
                    return new TemplatePostProcessor(single);
                }
            case "BertProcessing":
            case "RobertaProcessing":
                return new ClsSepPostProcessor(Required(e, "cls", "[token, id]")[1].GetInt32(), Required(e, "sep",
                    "[token, id]")[1].GetInt32());
            default:
                throw new NotSupportedException($"post-processor type '{type}' is not supported; supported: " +
                    $"ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence");
        }
    }

    private static string? ConfigToken(JsonElement cfg, string key)
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

    // What LlamaTokenizerFast builds: [bos] $A [eos], with add_bos_token defaulting to true and add_eos_token to false.
    private static PostProcessor BosEosFromConfig(JsonElement cfg, List<AddedToken> added, BpeModel bpe)
    {
        var single = new List<int[]?>();
        string? bos = ConfigToken(cfg, "bos_token"), eos = ConfigToken(cfg, "eos_token");
        if (Flag(cfg, "add_bos_token", true))
        {
            if (bos == null) throw new InvalidDataException("tokenizer_config.json: add_bos_token is true but " +
                "bos_token is not set");
            single.Add([IdOf(bos, added, bpe, "tokenizer_config.json bos_token")]);
        }
        single.Add(null);
        if (Flag(cfg, "add_eos_token", false))
        {
            if (eos == null) throw new InvalidDataException("tokenizer_config.json: add_eos_token is true but " +
                "eos_token is not set");
            single.Add([IdOf(eos, added, bpe, "tokenizer_config.json eos_token")]);
        }
        return new TemplatePostProcessor(single);
    }
}
