// Source: ggml's GGUF specification (ggml/docs/gguf.md, "Tokenizer": tokenizer.ggml.model/tokens/token_type/merges,
// special token ids, tokenizer.chat_template) and the HF tokenizer.json format (tokenizers' serialization) that
// byte-level BPE ("gpt2") vocabularies come from.
using System.Text;
using System.Text.Json;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// A byte-level BPE tokenizer as GGUF metadata ↔ HF tokenizer.json + tokenizer_config.json. Token types follow
/// llama.cpp: 1 normal, 3 control (HF special added tokens), 4 user-defined (non-special added tokens), 5 unused
/// (ids the vocabulary skips).
/// </summary>
public static class GgufTokenizer
{
    public const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    /// <summary>The tokenizer files a GGUF's metadata describes (chat template and special tokens included).</summary>
    public sealed record Files(string TokenizerJson, string TokenizerConfigJson);

    /// <summary>Whether the file carries a tokenizer at all.</summary>
    public static bool HasTokenizer(GgufMetadata m) => m.Contains("tokenizer.ggml.model");

    /// <summary>Builds tokenizer.json and tokenizer_config.json from the metadata of a gpt2-model GGUF.</summary>
    public static Files ToHfFiles(GgufMetadata m)
    {
        string model = m.GetString("tokenizer.ggml.model");
        if (model != "gpt2")
            throw new GgufException(m.Source, "metadata key 'tokenizer.ggml.model'", $"is '{model}', expected " +
                "'gpt2' (byte-level BPE; SentencePiece 'llama' vocabularies are not supported)");
        string pre = m.GetStringOrNull("tokenizer.ggml.pre") ?? "default";
        var entry = GgufPreTokenizers.ByName(pre) ?? throw new GgufException(m.Source,
            "metadata key 'tokenizer.ggml.pre'", $"is '{pre}', expected one of {GgufPreTokenizers.KnownNames}");
        var tokens = m.GetArray<string>("tokenizer.ggml.tokens", GgufValueType.String);
        var merges = m.GetArray<string>("tokenizer.ggml.merges", GgufValueType.String);
        int[] types = m.Contains("tokenizer.ggml.token_type") ? m.GetIntegerArray("tokenizer.ggml.token_type")
            : Enumerable.Repeat(Normal, tokens.Length).ToArray();
        if (types.Length != tokens.Length)
            throw new GgufException(m.Source, "metadata key 'tokenizer.ggml.token_type'", $"has {types.Length} " +
                $"entries, expected one per token ({tokens.Length})");
        int? bos = OptionalId(m, "tokenizer.ggml.bos_token_id", tokens.Length);
        int? eos = OptionalId(m, "tokenizer.ggml.eos_token_id", tokens.Length);
        int? pad = OptionalId(m, "tokenizer.ggml.padding_token_id", tokens.Length);
        bool addBos = m.GetBool("tokenizer.ggml.add_bos_token", false) && bos is not null;

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteStartArray("added_tokens");
            for (int id = 0; id < tokens.Length; id++)
            {
                if (types[id] is not (Control or UserDefined)) continue;
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("content", tokens[id]);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", types[id] == Control);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (entry.Normalizer is { } n)
            {
                w.WriteStartObject("normalizer");
                w.WriteString("type", n);
                w.WriteEndObject();
            }
            else w.WriteNull("normalizer");
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("pretokenizers");
            foreach (string regex in entry.Regexes)
            {
                w.WriteStartObject();
                w.WriteString("type", "Split");
                w.WriteStartObject("pattern");
                w.WriteString("Regex", regex);
                w.WriteEndObject();
                w.WriteString("behavior", "Isolated");
                w.WriteBoolean("invert", false);
                w.WriteEndObject();
            }
            w.WriteStartObject();
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", false);
            w.WriteBoolean("use_regex", false);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            if (addBos)
            {
                w.WriteStartObject("post_processor");
                w.WriteString("type", "TemplateProcessing");
                w.WriteStartArray("single");
                w.WriteStartObject();
                w.WriteStartObject("SpecialToken");
                w.WriteString("id", tokens[bos!.Value]);
                w.WriteNumber("type_id", 0);
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteStartObject();
                w.WriteStartObject("Sequence");
                w.WriteString("id", "A");
                w.WriteNumber("type_id", 0);
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteStartObject("special_tokens");
                w.WriteStartObject(tokens[bos.Value]);
                w.WriteString("id", tokens[bos.Value]);
                w.WriteStartArray("ids");
                w.WriteNumberValue(bos.Value);
                w.WriteEndArray();
                w.WriteStartArray("tokens");
                w.WriteStringValue(tokens[bos.Value]);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            else w.WriteNull("post_processor");
            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", false);
            w.WriteBoolean("use_regex", false);
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", entry.IgnoreMerges);
            w.WriteStartObject("vocab");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int id = 0; id < tokens.Length; id++)
            {
                if (types[id] == Unused) continue;
                if (!seen.Add(tokens[id]))
                    throw new GgufException(m.Source, "metadata key 'tokenizer.ggml.tokens'",
                        $"token {id} '{tokens[id]}' appears twice");
                w.WriteNumber(tokens[id], id);
            }
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (string merge in merges) w.WriteStringValue(merge);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        string tokenizerJson = Encoding.UTF8.GetString(ms.ToArray());

        using var cs = new MemoryStream();
        using (var w = new Utf8JsonWriter(cs, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteBoolean("add_bos_token", addBos);
            w.WriteBoolean("add_eos_token", false);
            w.WriteBoolean("clean_up_tokenization_spaces", false);
            // An explicit null: a tokenizer without BOS must not pick one by its well-known names.
            if (bos is { } b) w.WriteString("bos_token", tokens[b]); else w.WriteNull("bos_token");
            if (eos is { } e) w.WriteString("eos_token", tokens[e]);
            if (pad is { } p) w.WriteString("pad_token", tokens[p]);
            if (m.GetStringOrNull("tokenizer.chat_template") is { } template) w.WriteString("chat_template", template);
            w.WriteEndObject();
        }
        return new Files(tokenizerJson, Encoding.UTF8.GetString(cs.ToArray()));
    }

    private static int? OptionalId(GgufMetadata m, string key, int vocab) =>
        m.Contains(key) ? (int)m.GetInteger(key, 0, vocab - 1) : null;

    /// <summary>
    /// Adds the tokenizer.* keys for a byte-level BPE tokenizer.json (+ tokenizer_config.json, may be null) to
    /// <paramref name="metadata"/>. <paramref name="source"/> names the files in errors. The token list is padded with
    /// unused "[PADn]" tokens to <paramref name="vocabSize"/> (the model's embedding rows, which llama.cpp requires to
    /// equal the token count), as llama.cpp's converter does.
    /// </summary>
    public static void AddTokenizerKeys(string tokenizerJson, string? tokenizerConfigJson, GgufMetadata metadata,
        string source, long? bosFallback, long? eosFallback, int vocabSize = 0)
    {
        using var doc = JsonDocument.Parse(tokenizerJson);
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object ||
            (model.TryGetProperty("type", out var t) && t.GetString() != "BPE"))
            throw new InvalidDataException($"{source}: only byte-level BPE tokenizers can be written to GGUF " +
                "(expected model.type BPE)");
        var regexes = new List<string>();
        bool byteLevel = false;
        if (root.TryGetProperty("pre_tokenizer", out var pre)) CollectSplits(pre, regexes, ref byteLevel);
        if (!byteLevel)
            throw new InvalidDataException($"{source}: the pre-tokenizer has no ByteLevel step; only byte-level BPE " +
                "tokenizers can be written to GGUF");
        var entry = GgufPreTokenizers.ByRegexes(regexes) ?? throw new InvalidDataException(
            $"{source}: the pre-tokenizer's split regexes match none that llama.cpp names (known: " +
            $"{GgufPreTokenizers.KnownNames})");

        var byId = new SortedDictionary<int, (string Token, int Type)>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = (p.Name, Normal);
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                bool special = a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                byId[a.GetProperty("id").GetInt32()] = (a.GetProperty("content").GetString()!,
                    special ? Control : UserDefined);
            }
        int count = byId.Count == 0 ? 0 : byId.Keys.Max() + 1;
        if (vocabSize > 0 && count > vocabSize)
            throw new InvalidDataException($"{source}: the tokenizer has ids up to {count - 1}, beyond the model's " +
                $"vocab_size {vocabSize}");
        count = Math.Max(count, vocabSize);
        var tokens = new string[count];
        var types = new int[count];
        for (int id = 0; id < count; id++)
            (tokens[id], types[id]) = byId.TryGetValue(id, out var tt) ? tt : ($"[PAD{id}]", Unused);
        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mj))
            foreach (var e in mj.EnumerateArray())
                merges.Add(e.ValueKind == JsonValueKind.String ? e.GetString()!
                    : $"{e[0].GetString()} {e[1].GetString()}");

        long? bos = bosFallback, eos = eosFallback;
        bool addBos = false;
        string? template = null;
        if (root.TryGetProperty("post_processor", out var post)) addBos = AddsLeadingSpecial(post);
        if (tokenizerConfigJson is not null)
        {
            using var cfgDoc = JsonDocument.Parse(tokenizerConfigJson);
            var cfg = cfgDoc.RootElement;
            long? Lookup(string key)
            {
                if (!cfg.TryGetProperty(key, out var v)) return null;
                string? content = v.ValueKind == JsonValueKind.String ? v.GetString()
                    : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString()
                    : null;
                int idx = content is null ? -1 : Array.IndexOf(tokens, content);
                return idx >= 0 ? idx : null;
            }
            bos = Lookup("bos_token") ?? bos;
            eos = Lookup("eos_token") ?? eos;
            if (cfg.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind is JsonValueKind.True or
                JsonValueKind.False && cfg.TryGetProperty("tokenizer_class", out var cls) &&
                cls.GetString() is "LlamaTokenizerFast" or "LlamaTokenizer")
                addBos = ab.ValueKind == JsonValueKind.True;
            if (cfg.TryGetProperty("chat_template", out var ct))
            {
                if (ct.ValueKind == JsonValueKind.String) template = ct.GetString();
                else if (ct.ValueKind == JsonValueKind.Array)
                    template = ct.EnumerateArray().FirstOrDefault(x => x.TryGetProperty("name", out var n) &&
                        n.GetString() == "default").TryGetProperty("template", out var tv) ? tv.GetString() : null;
            }
        }

        metadata.Add("tokenizer.ggml.model", "gpt2");
        metadata.Add("tokenizer.ggml.pre", entry.Name);
        metadata.Add("tokenizer.ggml.tokens", GgufArray.Of(tokens));
        metadata.Add("tokenizer.ggml.token_type", GgufArray.Of(types));
        metadata.Add("tokenizer.ggml.merges", GgufArray.Of(merges.ToArray()));
        if (bos is { } b && b < count) metadata.Add("tokenizer.ggml.bos_token_id", (uint)b);
        if (eos is { } e2 && e2 < count) metadata.Add("tokenizer.ggml.eos_token_id", (uint)e2);
        metadata.Add("tokenizer.ggml.add_bos_token", addBos && bos is not null);
        if (template is not null) metadata.Add("tokenizer.chat_template", template);
    }

    private static void CollectSplits(JsonElement e, List<string> regexes, ref bool byteLevel)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("type", out var t)) return;
        switch (t.GetString())
        {
            case "Sequence":
                foreach (var c in e.GetProperty("pretokenizers").EnumerateArray())
                    CollectSplits(c, regexes, ref byteLevel);
                break;
            case "Split" when e.GetProperty("pattern").TryGetProperty("Regex", out var r):
                regexes.Add(r.GetString()!);
                break;
            case "ByteLevel":
                byteLevel = true;
                break;
        }
    }

    /// <summary>True when the post-processor's single-sequence template starts with a special token (a BOS).</summary>
    private static bool AddsLeadingSpecial(JsonElement post)
    {
        if (post.ValueKind != JsonValueKind.Object || !post.TryGetProperty("type", out var t)) return false;
        if (t.GetString() == "Sequence" && post.TryGetProperty("processors", out var ps))
            return ps.EnumerateArray().Any(AddsLeadingSpecial);
        return t.GetString() == "TemplateProcessing" && post.TryGetProperty("single", out var s) &&
            s.GetArrayLength() > 0 && s[0].TryGetProperty("SpecialToken", out _);
    }
}
