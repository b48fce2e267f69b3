using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

public class TokenizerTests
{
    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "nr-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    [Fact]
    public void Char_EncodesSpecialTokensAsOneId_AndRoundTrips()
    {
        var tok = new CharTokenizer();
        var text = "<|bos|>What is 2 + 3?\n<think>2 + 3 = 5</think> \\boxed{5}<|eos|>";
        var ids = tok.Encode(text);
        Assert.Equal(tok.BosId, ids[0]);
        Assert.Equal(tok.EosId, ids[^1]);
        Assert.Contains(tok.TokenToId("<think>")!.Value, ids);
        Assert.Equal(text, tok.Decode(ids));
        Assert.Equal("What is 2 + 3?\n2 + 3 = 5 \\boxed{5}", tok.Decode(ids, skipSpecialTokens: true));
        Assert.Equal(0, tok.PadId);
        // Unknown characters map to <|unk|>, they do not throw.
        Assert.Equal([tok.UnkId], tok.Encode("é"));
    }

    [Fact]
    public void Char_SavesAndLoadsFromModelDirectory()
    {
        var dir = TempDir();
        try
        {
            var tok = new CharTokenizer(CharTokenizer.DefaultSpecialTokens, ["a", "b", "\n", "😀"]);
            tok.Save(dir);
            var loaded = Assert.IsType<CharTokenizer>(TokenizerLoader.Load(dir));
            Assert.Equal(tok.VocabSize, loaded.VocabSize);
            Assert.Equal(tok.Encode("ab\n😀<think>"), loaded.Encode("ab\n😀<think>"));
            Assert.Equal("ab\n😀", loaded.Decode(loaded.Encode("ab\n😀")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Load_MissingTokenizer_ClearError()
    {
        var dir = TempDir();
        try
        {
            var ex = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(dir));
            Assert.Contains("has no tokenizer", ex.Message);
            Assert.Contains("tokenizer.json", ex.Message);
            Assert.Throws<DirectoryNotFoundException>(() => TokenizerLoader.Load(Path.Combine(dir, "nope")));
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"hello\": 1}");
            Assert.Contains("neither", Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir)).Message);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"format\": \"nativereasoner-char-tokenizer\", \"version\": 1, \"special_tokens\": [\"<|pad|>\"], \"characters\": []}");
            Assert.Contains("required", Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void HuggingFace_ByteLevelBpe_ThroughMicrosoftMlTokenizers()
    {
        // A tiny GPT-2-style byte-level BPE: 'Ġ' is the byte-level image of a space.
        const string json = """
        {
          "version": "1.0",
          "added_tokens": [ { "id": 7, "content": "<|endoftext|>", "special": true } ],
          "pre_tokenizer": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
          "decoder": { "type": "ByteLevel" },
          "model": {
            "type": "BPE",
            "vocab": { "h": 0, "i": 1, "Ġ": 2, "hi": 3, "Ġx": 4, "Ġhi": 5, "!": 6, "<|endoftext|>": 7 },
            "merges": [ "h i", "Ġ hi" ]
          }
        }
        """;
        var dir = TempDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json);
            var tok = Assert.IsType<HfTokenizer>(TokenizerLoader.Load(dir));
            Assert.Equal([3, 5, 6, 7], tok.Encode("hi hi!<|endoftext|>"));
            Assert.Equal("hi hi!", tok.Decode([3, 5, 6]));
            Assert.Equal("hi hi!", tok.Decode([3, 5, 6, 7], skipSpecialTokens: true));
            Assert.Equal(7, tok.EosId);
            Assert.Equal(8, tok.VocabSize);
            var copy = TempDir();
            tok.Save(copy);
            Assert.Equal(json, File.ReadAllText(Path.Combine(copy, "tokenizer.json")));
            Directory.Delete(copy, true);
        }
        finally { Directory.Delete(dir, true); }
    }
}
