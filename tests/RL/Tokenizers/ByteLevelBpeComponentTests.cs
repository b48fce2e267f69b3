using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.RL;
using NativeReasoner.RL.Tokenizers;
using Xunit;

namespace NativeReasoner.Tests.RL.Tokenizers;

/// <summary>The pieces of the byte-level BPE on small hand-checked inputs, and their errors.</summary>
public class ByteLevelBpeComponentTests
{
    private static List<string> Matches(CodePointRegex regex, string text)
    {
        var spans = new List<(int Start, int Length)>();
        regex.Matches(text, spans);
        return spans.Select(s => text.Substring(s.Start, s.Length)).ToList();
    }

    [Fact]
    public void CodePointRegex_MatchesSupplementaryCodePointsByCategory()
    {
        // \p{L} matches math letters and CJK extension B; \p{S} an emoji and its skin tone (Sk); lone surrogates are
        // Cs.
        Assert.Equal(["a𝐀b", "𠀀x"], Matches(new CodePointRegex(@"\p{L}+"), "a𝐀b 😀 𠀀x"));
        Assert.Equal(["😀🏽", "+"], Matches(new CodePointRegex(@"\p{S}+"), "a😀🏽b+"));
        Assert.Equal(["😀", "\uD800"], Matches(new CodePointRegex(@"[^\s\p{L}\p{N}]"), "😀 \uD800"));
        Assert.Equal(["𝟎𝟏𝟐", "12"], Matches(new CodePointRegex(@"\p{N}+"), "𝟎𝟏𝟐a12"));
        // a literal range of the pattern never captures a stand-in: U+20000 is Lo but outside [一-龥]
        Assert.Equal(["一二"], Matches(new CodePointRegex("[一-龥]+"), "一二𠀀"));
    }

    [Fact]
    public void CodePointRegex_LiteralRanges_ReadsRangesAndEscapes()
    {
        var ranges = CodePointRegex.LiteralRanges(@"[a-c\u3040-\u309F]x\p{L}[\-\]]");
        Assert.Contains((97, 99), ranges);
        Assert.Contains((0x3040, 0x309F), ranges);
        Assert.Contains(('x', 'x'), ranges);
        Assert.Contains(('-', '-'), ranges);
        Assert.DoesNotContain(('p', 'p'), ranges);
    }

    private static List<string> Split(SplitBehavior behavior, string text, bool invert = false)
    {
        var output = new List<TextPiece>();
        new SplitPreTokenizer(new CodePointRegex("-"), behavior, invert).Split(new TextPiece(text, 0, text.Length),
            output);
        return output.Select(p => p.ToString()).ToList();
    }

    [Fact]
    public void Split_Behaviors_AsHuggingFaceDocumentsThem()
    {
        const string text = "the-final--countdown";
        Assert.Equal(["the", "final", "countdown"], Split(SplitBehavior.Removed, text));
        Assert.Equal(["the", "-", "final", "-", "-", "countdown"], Split(SplitBehavior.Isolated, text));
        Assert.Equal(["the-", "final-", "-", "countdown"], Split(SplitBehavior.MergedWithPrevious, text));
        Assert.Equal(["the", "-final", "-", "-countdown"], Split(SplitBehavior.MergedWithNext, text));
        Assert.Equal(["the", "-", "final", "--", "countdown"], Split(SplitBehavior.Contiguous, text));
        Assert.Equal(["-", "-", "-"], Split(SplitBehavior.Removed, text, invert: true));
    }

    [Fact]
    public void Digits_IsolatesRunsOrSingleDigits()
    {
        var output = new List<TextPiece>();
        new DigitsPreTokenizer(individualDigits: false).Split(new TextPiece("ab123c4", 0, 7), output);
        Assert.Equal(["ab", "123", "c", "4"], output.Select(p => p.ToString()));
        output.Clear();
        new DigitsPreTokenizer(individualDigits: true).Split(new TextPiece("a12", 0, 3), output);
        Assert.Equal(["a", "1", "2"], output.Select(p => p.ToString()));
    }

    [Fact]
    public void Nfc_ComposesAndKeepsLoneSurrogates()
    {
        var nfc = new UnicodeNormalizer(NormalizationForm.FormC);
        Assert.Equal("café", nfc.Normalize("cafe\u0301"));
        Assert.Equal("é\uD800é", nfc.Normalize("e\u0301\uD800e\u0301"));
        const string ascii = "plain";
        Assert.Same(ascii, nfc.Normalize(ascii));
    }

    // A byte-level tokenizer.json: the 256 byte characters, then the merged tokens in merge order.
    private static JsonObject TinyJson(JsonArray merges, JsonArray? added = null, JsonNode? preTokenizer = null)
    {
        var vocab = new JsonObject();
        int next = 0;
        foreach (char c in ByteLevelAlphabet.ByteToChar) vocab[c.ToString()] = next++;
        foreach (var m in merges)
        {
            string merged = m is JsonArray pair ? (string)pair[0]! + (string)pair[1]! : ((string)m!).Replace(" ", "");
            if (!vocab.ContainsKey(merged)) vocab[merged] = next++;
        }
        return new JsonObject
        {
            ["added_tokens"] = added ?? [],
            ["normalizer"] = null,
            ["pre_tokenizer"] = preTokenizer ?? new JsonObject
            {
                ["type"] = "ByteLevel", ["add_prefix_space"] = false,
                ["use_regex"] = true
            },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel" },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
    }

    private static ByteLevelBpeTokenizer Build(JsonObject json) =>
        TokenizerJson.Parse(JsonDocument.Parse(json.ToJsonString()).RootElement, null, "test tokenizer.json");

    private static string[] Pieces(ByteLevelBpeTokenizer tok, string text) =>
        tok.Encode(text).Select(i => tok.IdToToken(i)!).ToArray();

    [Fact]
    public void Merges_BothSpellings_GiveTheSameTokens_LowestRankFirst()
    {
        var asStrings = Build(TinyJson(["l o", "lo w", "Ġ lo", "e r"]));
        var asPairs = Build(TinyJson([new JsonArray("l", "o"), new JsonArray("lo", "w"), new JsonArray("Ġ", "lo"),
            new JsonArray("e", "r")]));
        // " lower": "l o" (rank 0) goes before "Ġ lo" (rank 2) can apply, so the space stays alone
        Assert.Equal(["low", "er", "Ġ", "low", "er"], Pieces(asStrings, "lower lower"));
        Assert.Equal(asStrings.Encode("lower lower low"), asPairs.Encode("lower lower low"));
        // rank decides, not position: "b c" (rank 0) is merged before "a b" (rank 1)
        var ranked = Build(TinyJson(["b c", "a b"]));
        Assert.Equal(["a", "bc"], Pieces(ranked, "abc"));
        // equal pairs: leftmost first ("aaa" → "aa" + "a")
        Assert.Equal(["aa", "a"], Pieces(Build(TinyJson(["a a"])), "aaa"));
    }

    [Fact]
    public void AddedTokens_KeptWhole_WithStripAndSingleWord()
    {
        var json = TinyJson(["a b"], [
            new JsonObject { ["id"] = 300, ["content"] = "<x>", ["special"] = true },
            new JsonObject { ["id"] = 301, ["content"] = "<xy>", ["special"] = true },
            new JsonObject { ["id"] = 302, ["content"] = "[L]", ["special"] = false, ["lstrip"] = true,
                ["rstrip"] = true },
            new JsonObject { ["id"] = 303, ["content"] = "ab", ["special"] = false, ["single_word"] = true },
        ]);
        var tok = Build(json);
        Assert.Equal([300], tok.Encode("<x>"));
        Assert.Equal([301], tok.Encode("<xy>")); // longest match at the leftmost position
        // whitespace around it is swallowed
        Assert.Equal([tok.Encode("q")[0], 302, tok.Encode("q")[0]], tok.Encode("q  [L]  q"));
        Assert.Equal([303], tok.Encode("ab"));
        Assert.DoesNotContain(303, tok.Encode("cab")); // not a single word there
        Assert.Equal("q<x>", tok.Decode(tok.Encode("q<x>")));
        Assert.Equal("q", tok.Decode(tok.Encode("q<x>"), skipSpecialTokens: true));
        Assert.NotEqual([300], tok.Encode("<x>", parseSpecialTokens: false));
        Assert.Equal("<x>", tok.Decode(tok.Encode("<x>", parseSpecialTokens: false)));
    }

    [Fact]
    public void ByteLevel_AddPrefixSpace_AndLongWordsEncodeWithoutCache()
    {
        var json = TinyJson(["Ġ a"], preTokenizer: new JsonObject
        {
            ["type"] = "ByteLevel", ["add_prefix_space"] = true,
            ["use_regex"] = true
        });
        var tok = Build(json);
        Assert.Equal(["Ġa"], Pieces(tok, "a"));
        var longWord = new string('a', 5000);
        Assert.Equal(longWord, tok.Decode(tok.Encode(longWord)).TrimStart());
    }

    [Fact]
    public void Decode_InvalidUtf8_BecomesReplacementCharacters_AndUnknownIdsAreSkipped()
    {
        var tok = Build(TinyJson([]));
        int b0 = tok.TokenToId(ByteLevelAlphabet.ByteToChar[0xE2].ToString())!.Value;
        int a = tok.TokenToId("a")!.Value;
        Assert.Equal("\uFFFDa", tok.Decode([b0, a]));
        Assert.Equal("a", tok.Decode([a, 100_000]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([-1]));
    }

    [Fact]
    public void BadFiles_GiveErrorsThatNameTheProblem()
    {
        var badMerge = TinyJson(["a b"]);
        badMerge["model"]!["merges"] = new JsonArray("a zz");
        Assert.Contains("'zz' is not in the vocabulary",
            Assert.Throws<InvalidDataException>(() => Build(badMerge)).Message);
        var badPre = TinyJson([], preTokenizer: new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
            new JsonObject { ["type"] = "Whitespace" }, new JsonObject { ["type"] = "ByteLevel" })
        });
        var e = Assert.Throws<InvalidDataException>(() => Build(badPre));
        Assert.Contains("'Whitespace'", e.Message);
        Assert.Contains("test tokenizer.json", e.Message);
        var badNorm = TinyJson([]);
        badNorm["normalizer"] = new JsonObject { ["type"] = "Precompiled" };
        Assert.Contains("normalizer type 'Precompiled'",
            Assert.Throws<InvalidDataException>(() => Build(badNorm)).Message);
        var badMergeShape = TinyJson([]);
        badMergeShape["model"]!["merges"] = new JsonArray(JsonValue.Create(3));
        Assert.Contains("merge #0", Assert.Throws<InvalidDataException>(() => Build(badMergeShape)).Message);
    }

    [Fact]
    public void CharTokenizer_ThroughTheInterface_AddsNothing_AndRefusesUnparsedSpecials()
    {
        ITokenizer tok = new CharTokenizer();
        Assert.Equal(tok.Encode("<think>1"), tok.Encode("<think>1", addSpecialTokens: true));
        Assert.Equal("<think>", tok.IdToToken(tok.Encode("<think>")[0]));
        var e = Assert.Throws<NotSupportedException>(() => tok.Encode("<think>", false, parseSpecialTokens: false));
        Assert.Contains("CharTokenizer", e.Message);
    }

    [Fact]
    public void ExistingTinyHfFile_StillLoadsThroughTheLoader()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-bpe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var json = TinyJson(["h i"], [new JsonObject { ["id"] = 400, ["content"] = "<|endoftext|>",
                ["special"] = true }]);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
            var tok = Assert.IsType<HfTokenizer>(TokenizerLoader.Load(dir));
            Assert.NotNull(tok.ByteLevel);
            Assert.Equal("hi", tok.IdToToken(tok.Encode("hi")[0]));
            Assert.Equal(400, tok.EosId);
        }
        finally { Directory.Delete(dir, true); }
    }
}
