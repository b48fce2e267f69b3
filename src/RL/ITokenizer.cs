// Source: the encode/decode surface of HF's PreTrainedTokenizerFast.
namespace NativeReasoner.RL;

/// <summary>
/// Text ↔ token ids. Special-token strings (<c>&lt;think&gt;</c>, <c>&lt;|eos|&gt;</c>, …) that appear in the
/// text are encoded as their single ids, so prompt templates and SFT targets can spell them out.
/// </summary>
public interface ITokenizer
{
    int VocabSize { get; }

    /// <summary>Begin-of-sequence id, or −1 when the vocabulary has none.</summary>
    int BosId { get; }

    /// <summary>End-of-sequence id: generation stops when it is sampled.</summary>
    int EosId { get; }

    /// <summary>Padding id (falls back to <see cref="EosId"/> when the vocabulary has no pad token).</summary>
    int PadId { get; }

    /// <summary>Encodes text without adding BOS/EOS; special-token strings in it become their ids.</summary>
    int[] Encode(string text);

    /// <summary>
    /// Encodes with control over special tokens: <paramref name="addSpecialTokens"/> adds what the tokenizer's
    /// configuration adds around a sequence (e.g. BOS for DeepSeek-V3/R1 and Llama 3, nothing for Qwen);
    /// with <paramref name="parseSpecialTokens"/> false, special-token strings in the text are encoded as plain
    /// text. Tokenizers without such configuration (the character tokenizer) add nothing.
    /// </summary>
    int[] Encode(string text, bool addSpecialTokens, bool parseSpecialTokens = true)
    {
        if (!parseSpecialTokens)
            throw new NotSupportedException($"{GetType().Name} always encodes special-token strings as their ids");
        return Encode(text);
    }

    /// <summary>
    /// The token string of an id (byte-level tokens show their byte characters, e.g. 'Ġ' for a space), or null.
    /// </summary>
    string? IdToToken(int id) => null;

    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    /// <summary>The id of an exact token string, or null.</summary>
    int? TokenToId(string token);

    /// <summary>Writes <c>tokenizer.json</c> (and anything else it needs) into <paramref name="directory"/>.</summary>
    void Save(string directory);
}

/// <summary>Finds and loads the tokenizer of a model directory.</summary>
public static class TokenizerLoader
{
    public const string FileName = "tokenizer.json";

    /// <summary>
    /// Loads <c>DIR/tokenizer.json</c>: the built-in character tokenizer when its <c>format</c> is
    /// <see cref="CharTokenizer.FormatName"/>, a Hugging Face tokenizer when it has a <c>model</c> section.
    /// </summary>
    public static ITokenizer Load(string modelDirectory)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        if (!Directory.Exists(modelDirectory))
            throw new DirectoryNotFoundException($"model directory '{modelDirectory}' does not exist");
        var path = Path.Combine(modelDirectory, FileName);
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"model directory '{modelDirectory}' has no tokenizer: expected {FileName} (NativeReasoner's character tokenizer or a Hugging Face tokenizer.json)", path);
        var text = File.ReadAllText(path);
        System.Text.Json.JsonDocument doc;
        try { doc = System.Text.Json.JsonDocument.Parse(text); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind == System.Text.Json.JsonValueKind.Object && root.TryGetProperty("format", out var f) && f.ValueKind == System.Text.Json.JsonValueKind.String && f.GetString() == CharTokenizer.FormatName)
                return CharTokenizer.FromJson(text, path);
            if (root.ValueKind == System.Text.Json.JsonValueKind.Object && root.TryGetProperty("model", out _))
                return HfTokenizer.FromJson(text, modelDirectory);
        }
        throw new InvalidDataException($"{path}: neither a NativeReasoner character tokenizer (\"format\": \"{CharTokenizer.FormatName}\") nor a Hugging Face tokenizer (no \"model\" section)");
    }
}
