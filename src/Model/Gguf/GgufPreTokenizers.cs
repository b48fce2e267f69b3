// Source: llama.cpp's pre-tokenizer names (tokenizer.ggml.pre; src/llama-vocab.cpp and convert_hf_to_gguf.py's
// get_vocab_base_pre) paired with the Split regexes of the HF tokenizer.json files they stand for.
namespace NativeReasoner.Model.Gguf;

/// <summary>
/// tokenizer.ggml.pre names ↔ the HF pre-tokenizer they denote: the Split regexes applied in order before
/// ByteLevel, the normalizer, and whether whole words found in the vocabulary skip the merges (ignore_merges).
/// </summary>
public static class GgufPreTokenizers
{
    public sealed record Entry(string Name, string[] Regexes, string? Normalizer, bool IgnoreMerges);

    private const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}" +
        @"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}" +
        @"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string DeepseekV3Words = @"[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+" +
        @"|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Known names; the first entry with given regexes is the name written on export.</summary>
    public static readonly IReadOnlyList<Entry> Known =
    [
        new("llama-bpe", [Llama3], null, IgnoreMerges: true),
        new("qwen2", [Qwen2], "NFC", IgnoreMerges: false),
        new("deepseek-r1-qwen", [Qwen2], "NFC", IgnoreMerges: false),
        new("deepseek-v3", [@"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", DeepseekV3Words], null, IgnoreMerges: false),
    ];

    public static string KnownNames => string.Join(", ", Known.Select(e => e.Name));

    public static Entry? ByName(string name) => Known.FirstOrDefault(e => e.Name == name);

    /// <summary>The entry whose regexes are <paramref name="regexes"/> (literal CR/LF and their escapes compare
    /// equal).</summary>
    public static Entry? ByRegexes(IReadOnlyList<string> regexes)
    {
        var wanted = regexes.Select(Canonical).ToArray();
        return Known.FirstOrDefault(e => e.Regexes.Select(Canonical).SequenceEqual(wanted));
    }

    private static string Canonical(string regex) => regex.Replace("\r", @"\r").Replace("\n", @"\n");
}
