// Source: a character vocabulary saved in the shape of HF's tokenizer.json.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace NativeReasoner.RL;

/// <summary>
/// The built-in character-level tokenizer: one id per Unicode character of a fixed alphabet, plus special
/// tokens. Ids: special tokens first, in <see cref="SpecialTokens"/> order (so <c>&lt;|pad|&gt;</c> is 0), then
/// the characters in <see cref="Characters"/> order. A character outside the alphabet becomes
/// <c>&lt;|unk|&gt;</c>. Saved as <c>tokenizer.json</c>:
/// <code>
/// { "format": "nativereasoner-char-tokenizer", "version": 1,
///   "special_tokens": ["&lt;|pad|&gt;", "&lt;|bos|&gt;", "&lt;|eos|&gt;", "&lt;|unk|&gt;", "&lt;think&gt;", "&lt;/think&gt;"],
///   "characters": ["\n", " ", "!", …] }
/// </code>
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    public const string FormatName = "nativereasoner-char-tokenizer";
    public const string Pad = "<|pad|>", Bos = "<|bos|>", Eos = "<|eos|>", Unk = "<|unk|>", ThinkStart = "<think>", ThinkEnd = "</think>";

    public static IReadOnlyList<string> DefaultSpecialTokens { get; } = [Pad, Bos, Eos, Unk, ThinkStart, ThinkEnd];

    /// <summary>Newline and printable ASCII (space … '~'): enough for the built-in tasks and LaTeX-ish answers.</summary>
    public static IReadOnlyList<string> DefaultCharacters { get; } =
        ["\n", .. Enumerable.Range(32, 95).Select(c => ((char)c).ToString())];

    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly string[] _tokens;
    // Special tokens longest first, so "</think>" is tried before a shorter token that is its prefix.
    private readonly string[] _specialByLength;

    public IReadOnlyList<string> SpecialTokens { get; }
    public IReadOnlyList<string> Characters { get; }
    public int VocabSize => _tokens.Length;
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }
    public int UnkId { get; }

    public CharTokenizer() : this(DefaultSpecialTokens, DefaultCharacters) { }

    public CharTokenizer(IEnumerable<string> specialTokens, IEnumerable<string> characters)
    {
        SpecialTokens = specialTokens.ToArray();
        Characters = characters.ToArray();
        foreach (var s in new[] { Pad, Eos, Unk })
            if (!SpecialTokens.Contains(s)) throw new ArgumentException($"character tokenizer: special token {s} is required");
        foreach (var c in Characters)
            if (c.EnumerateRunes().Count() != 1) throw new ArgumentException($"character tokenizer: '{c}' is not exactly one character");
        _tokens = [.. SpecialTokens, .. Characters];
        for (int i = 0; i < _tokens.Length; i++)
            if (!_ids.TryAdd(_tokens[i], i)) throw new ArgumentException($"character tokenizer: token '{_tokens[i]}' appears twice");
        _specialByLength = SpecialTokens.OrderByDescending(s => s.Length).ToArray();
        PadId = _ids[Pad];
        EosId = _ids[Eos];
        UnkId = _ids[Unk];
        BosId = _ids.GetValueOrDefault(Bos, -1);
    }

    public int? TokenToId(string token) => _ids.TryGetValue(token, out var id) ? id : null;

    public bool IsSpecial(int id) => id >= 0 && id < SpecialTokens.Count;

    public string? IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            string? special = null;
            if (text[i] == '<')
                foreach (var s in _specialByLength)
                    if (string.CompareOrdinal(text, i, s, 0, s.Length) == 0) { special = s; break; }
            if (special != null)
            {
                ids.Add(_ids[special]);
                i += special.Length;
                continue;
            }
            // One Unicode scalar (a surrogate pair counts as one character).
            int len = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            ids.Add(_ids.TryGetValue(text.Substring(i, len), out var id) ? id : UnkId);
            i += len;
        }
        return ids.ToArray();
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            if (id < 0) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is negative");
            // A model's vocab_size may be padded past the tokenizer's: such ids read as <|unk|>.
            if (id >= _tokens.Length)
            {
                if (!skipSpecialTokens) sb.Append(Unk);
                continue;
            }
            if (skipSpecialTokens && IsSpecial(id)) continue;
            sb.Append(_tokens[id]);
        }
        return sb.ToString();
    }

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["format"] = FormatName,
            ["version"] = 1,
            ["special_tokens"] = new JsonArray(SpecialTokens.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray()),
            ["characters"] = new JsonArray(Characters.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray()),
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, TokenizerLoader.FileName), ToJson());
    }

    /// <param name="source">Where the text came from, for error messages.</param>
    public static CharTokenizer FromJson(string json, string source = "tokenizer.json")
    {
        try
        {
            var root = JsonNode.Parse(json) ?? throw new InvalidDataException("empty document");
            if ((string?)root["format"] != FormatName) throw new InvalidDataException($"\"format\" is not \"{FormatName}\"");
            int version = (int?)root["version"] ?? 0;
            if (version != 1) throw new InvalidDataException($"unsupported version {version} (this build reads version 1)");
            var specials = (root["special_tokens"] as JsonArray ?? throw new InvalidDataException("missing \"special_tokens\" array")).Select(n => (string)n!).ToArray();
            var chars = (root["characters"] as JsonArray ?? throw new InvalidDataException("missing \"characters\" array")).Select(n => (string)n!).ToArray();
            return new CharTokenizer(specials, chars);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or ArgumentException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: invalid character tokenizer: {e.Message}", e);
        }
    }
}
