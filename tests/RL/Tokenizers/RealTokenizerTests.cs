using System.Text;
using System.Text.Json.Nodes;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL.Tokenizers;

/// <summary>
/// DeepSeek-V3, Qwen3 and Llama 3.1 tokenizers against the reference encoder (@lenml/tokenizers, a transformers.js
/// fork) on the corpus of tests/reference/tokenizers/corpus.js: ids and decodes identical. BOS and R1's
/// &lt;think&gt; ids are HF Python semantics, tested separately since the reference differs there.
/// </summary>
public class RealTokenizerTests
{
    public static TheoryData<string> Names => [RealTokenizers.DeepseekV3, RealTokenizers.Qwen3, RealTokenizers.Llama31];

    private static string Show(string s) =>
        string.Concat(s.Select(c => c is >= ' ' and < '\u007f' ? c.ToString() : $"\\u{(int)c:x4}"));

    [Theory]
    [MemberData(nameof(Names))]
    public void Encode_MatchesReferenceIds_OnTheCorpus(string name)
    {
        var tok = RealTokenizers.Get(name);
        Assert.NotNull(tok.ByteLevel);
        var cases = RealTokenizers.Expected(name);
        Assert.True(cases.Count > 300, $"{name}: only {cases.Count} cases");
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var ids = tok.Encode(c.Text);
            if (!ids.SequenceEqual(c.Ids))
                failures.Add($"'{Show(c.Text)}': expected [{string.Join(",", c.Ids)}], got [{string.Join(",", ids)}]");
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count}/{cases.Count} differ:\n" + string.Join("\n",
            failures.Take(8)));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Decode_MatchesReference_WithAndWithoutSpecialTokens(string name)
    {
        var tok = RealTokenizers.Get(name);
        var failures = new List<string>();
        foreach (var c in RealTokenizers.Expected(name))
        {
            string decoded = tok.Decode(c.Ids), skipped = tok.Decode(c.Ids, skipSpecialTokens: true);
            if (decoded != c.Decoded) failures.Add($"decode '{Show(c.Text)}': expected '{Show(c.Decoded)}', got " +
                $"'{Show(decoded)}'");
            if (skipped != c.DecodedSkipSpecial) failures.Add($"skip '{Show(c.Text)}': expected " +
                $"'{Show(c.DecodedSkipSpecial)}', got '{Show(skipped)}'");
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} differ:\n" + string.Join("\n", failures.Take(8)));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void AddSpecialTokens_MatchesReference_ExceptDeepseekBos(string name)
    {
        var tok = RealTokenizers.Get(name);
        foreach (var c in RealTokenizers.Expected(name).Take(60))
        {
            // The reference ignores tokenizer_config.json's add_bos_token (DeepSeek's LlamaTokenizerFast): HF Python
            // adds BOS.
            int[] expected = name == RealTokenizers.DeepseekV3 ? [0, .. c.WithSpecial] : c.WithSpecial;
            Assert.Equal(expected, tok.Encode(c.Text, addSpecialTokens: true));
        }
    }

    [Fact]
    public void Bos_FollowsTheConfigAsHfPythonDoes()
    {
        // DeepSeek-V3: LlamaTokenizerFast with add_bos_token → <｜begin▁of▁sentence｜> (0) first; ByteLevel
        // post-processor alone adds none.
        var ds = RealTokenizers.Get(RealTokenizers.DeepseekV3);
        Assert.Equal(0, ds.BosId);
        Assert.Equal(1, ds.EosId);
        Assert.Equal([0, .. ds.Encode("Hello")], ds.Encode("Hello", addSpecialTokens: true));
        // Qwen3: no BOS at all.
        var qwen = RealTokenizers.Get(RealTokenizers.Qwen3);
        Assert.Equal(qwen.Encode("Hello"), qwen.Encode("Hello", addSpecialTokens: true));
        Assert.Equal(qwen.TokenToId("<|im_end|>"), qwen.EosId);
        Assert.Equal(-1, qwen.BosId); // bos_token: null in its config
        Assert.Equal(qwen.TokenToId("<|endoftext|>"), qwen.PadId);
        // Llama 3.1: TemplateProcessing puts <|begin_of_text|> (128000) first.
        var llama = RealTokenizers.Get(RealTokenizers.Llama31);
        Assert.Equal(128000, llama.BosId);
        Assert.Equal([128000, .. llama.Encode("Hello")], llama.Encode("Hello", addSpecialTokens: true));
        Assert.Equal(llama.TokenToId("<|eot_id|>"), llama.EosId);
    }

    [Fact]
    public void ParseSpecialTokensFalse_EncodesSpecialStringsAsText()
    {
        var llama = RealTokenizers.Get(RealTokenizers.Llama31);
        const string text = "<|begin_of_text|>hi";
        Assert.Equal(128000, llama.Encode(text)[0]);
        var asText = llama.Encode(text, addSpecialTokens: false, parseSpecialTokens: false);
        Assert.DoesNotContain(128000, asText);
        Assert.True(asText.Length > 3);
        Assert.Equal(text, llama.Decode(asText));
    }

    [Fact]
    public void R1Think_TokensMapToTheirIds_WhenTheFileNamesThem()
    {
        // R1's tokenizer.json is V3's with ids 128798/128799 renamed to <think>/</think> (non-special, normalized).
        var dir = RealTokenizers.Unpack(RealTokenizers.DeepseekV3, json =>
        {
            var root = JsonNode.Parse(json)!;
            foreach (var t in root["added_tokens"]!.AsArray())
            {
                int id = (int)t!["id"]!;
                if (id is not (128798 or 128799)) continue;
                t["content"] = id == 128798 ? "<think>" : "</think>";
                t["special"] = false;
                t["normalized"] = true;
            }
            return root.ToJsonString();
        });
        try
        {
            var r1 = TokenizerLoader.Load(dir);
            var ids = r1.Encode("<think>\nx</think>\n\nAnswer");
            Assert.Equal(128798, ids[0]);
            Assert.Contains(128799, ids);
            Assert.Equal(128798, r1.TokenToId("<think>"));
            // not special: kept when special tokens are skipped
            Assert.Equal("<think>\nx</think>\n\nAnswer", r1.Decode(ids, skipSpecialTokens: true));
            // The V3 file spells <think> with ordinary tokens.
            var v3 = RealTokenizers.Get(RealTokenizers.DeepseekV3);
            Assert.DoesNotContain(128798, v3.Encode("<think>"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Emoji_FromTheIssue_EncodeAsTheReferenceDoes()
    {
        var ds = RealTokenizers.Get(RealTokenizers.DeepseekV3);
        Assert.Equal([67, 28927, 225, 68], ds.Encode("a😀b"));
        var ids = ds.Encode("emoji 😀👍🏽 ok");
        Assert.Equal("emoji 😀👍🏽 ok", ds.Decode(ids));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void RoundTrip_RandomStrings(string name)
    {
        var tok = RealTokenizers.Get(name);
        var rng = new Random(1234);
        for (int trial = 0; trial < 300; trial++)
        {
            var s = RandomText(rng, rng.Next(0, 60));
            var ids = tok.Encode(s, addSpecialTokens: false, parseSpecialTokens: false);
            // Qwen normalizes NFC
            string expected = name == RealTokenizers.Qwen3 ? s.Normalize(NormalizationForm.FormC) : s;
            string decoded = tok.Decode(ids);
            if (name == RealTokenizers.Llama31) // clean_up_tokenization_spaces is on for Llama 3.1
                expected = NativeReasoner.RL.Tokenizers.ByteLevelDecoder.CleanUpTokenization(expected);
            Assert.True(expected == decoded, $"{name} trial {trial}: '{Show(s)}' decoded as '{Show(decoded)}'");
        }
    }

    [Fact]
    public void RoundTrip_ArbitraryBytes_AndLoneSurrogates()
    {
        var tok = RealTokenizers.Get(RealTokenizers.DeepseekV3);
        var rng = new Random(99);
        for (int trial = 0; trial < 200; trial++)
        {
            var bytes = new byte[rng.Next(1, 40)];
            rng.NextBytes(bytes);
            // arbitrary bytes → the text a lossy UTF-8 reader makes of them → ids → the same text
            var text = Encoding.UTF8.GetString(bytes);
            Assert.Equal(text, tok.Decode(tok.Encode(text, false, parseSpecialTokens: false)));
        }
        // a lone surrogate is encoded as U+FFFD's bytes, as JavaScript's TextEncoder and Rust do
        Assert.Equal("a\uFFFDb\uFFFD", tok.Decode(tok.Encode("a\uD800b\uDC00")));
    }

    private static string RandomText(Random rng, int length)
    {
        (int Lo, int Hi)[] pools =
        [
            (0x20, 0x7E), (0x20, 0x7E), (0x0A, 0x0A), (0x09, 0x09), (0xA0, 0x24F), (0x300, 0x36F), (0x400, 0x4FF),
            (0x4E00, 0x9FA5), (0x3040, 0x30FF), (0xAC00, 0xD7A3), (0x1F300, 0x1F6FF), (0x1F3FB, 0x1F3FF), (0x200D,
                0x200D),
            (0xFE0F, 0xFE0F), (0x1D400, 0x1D7FF), (0x20000, 0x2A6DF), (0xE000, 0xF8FF), (0xF0000, 0xF00FF),
        ];
        var sb = new StringBuilder();
        for (int i = 0; i < length; i++)
        {
            var (lo, hi) = pools[rng.Next(pools.Length)];
            sb.Append(char.ConvertFromUtf32(rng.Next(lo, hi + 1)));
        }
        return sb.ToString();
    }
}
