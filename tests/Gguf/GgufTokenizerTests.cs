using NativeReasoner.Model.Gguf;
using NativeReasoner.RL;
using NativeReasoner.Tests.RL.Tokenizers;
using Xunit;

namespace NativeReasoner.Tests.Gguf;

/// <summary>
/// The real tokenizers through GGUF metadata: tokenizer.json → tokenizer.ggml.* → a GGUF file → tokenizer.json
/// encodes every reference case to the reference encoder's ids (with and without special tokens) and keeps the chat
/// template and special tokens.
/// </summary>
public sealed class GgufTokenizerTests
{
    [Theory]
    [InlineData(RealTokenizers.Qwen3, "qwen2", false)]
    [InlineData(RealTokenizers.Llama31, "llama-bpe", true)]
    [InlineData(RealTokenizers.DeepseekV3, "deepseek-v3", true)]
    public void TokenizerThroughGguf_EncodesLikeTheReference(string name, string pre, bool addsBos)
    {
        string source = RealTokenizers.Unpack(name);
        string target = Path.Combine(Path.GetTempPath(), "nr-ggtok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(target);
        try
        {
            string tokenizerConfig = File.ReadAllText(Path.Combine(source, "tokenizer_config.json"));
            var metadata = new GgufMetadata();
            metadata.Add("general.architecture", "test");
            GgufTokenizer.AddTokenizerKeys(File.ReadAllText(Path.Combine(source, "tokenizer.json")), tokenizerConfig,
                metadata, name, null, null);
            string gguf = Path.Combine(target, "t.gguf");
            GgufWriter.Write(gguf, metadata, []);
            GgufTokenizer.Files files;
            using (var file = GgufFile.Open(gguf))
            {
                Assert.Equal(pre, file.Metadata.GetString("tokenizer.ggml.pre"));
                Assert.Equal(addsBos, file.Metadata.GetBool("tokenizer.ggml.add_bos_token", false));
                files = GgufTokenizer.ToHfFiles(file.Metadata);
            }
            File.WriteAllText(Path.Combine(target, "tokenizer.json"), files.TokenizerJson);
            File.WriteAllText(Path.Combine(target, "tokenizer_config.json"), files.TokenizerConfigJson);
            var tokenizer = (HfTokenizer)TokenizerLoader.Load(target);
            var reference = RealTokenizers.Get(name);
            Assert.Equal(reference.VocabSize, tokenizer.VocabSize);
            Assert.Equal(reference.BosId, tokenizer.BosId);
            Assert.Equal(reference.EosId, tokenizer.EosId);
            // GGUF has no clean_up_tokenization_spaces (llama.cpp decodes these vocabularies without it): where the
            // original cleans up, HF's clean-up is applied here before comparing.
            bool cleanUp = tokenizerConfig.Contains("\"clean_up_tokenization_spaces\": true");
            foreach (var c in RealTokenizers.Expected(name))
            {
                Assert.Equal(c.Ids, tokenizer.Encode(c.Text, addSpecialTokens: false));
                // GGUF's add_bos_token means a BOS before every text, as llama.cpp adds it (HF's DeepSeek tokenizer
                // adds none to an empty text).
                Assert.Equal(addsBos ? [reference.BosId, .. c.Ids] : c.Ids,
                    tokenizer.Encode(c.Text, addSpecialTokens: true));
                string decoded = tokenizer.Decode(c.Ids);
                Assert.Equal(c.Decoded, cleanUp ? CleanUp(decoded) : decoded);
            }
            using var cfg = System.Text.Json.JsonDocument.Parse(files.TokenizerConfigJson);
            using var original = System.Text.Json.JsonDocument.Parse(tokenizerConfig);
            if (original.RootElement.TryGetProperty("chat_template", out var t))
                Assert.Equal(t.GetString(), cfg.RootElement.GetProperty("chat_template").GetString());
        }
        finally
        {
            Directory.Delete(source, true);
            Directory.Delete(target, true);
        }
    }

    // transformers' PreTrainedTokenizerBase.clean_up_tokenization.
    private static string CleanUp(string s) => s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!")
        .Replace(" ,", ",").Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s")
        .Replace(" 've", "'ve").Replace(" 're", "'re");

    [Fact]
    public void UnsupportedTokenizers_NameTheKey()
    {
        var m = new GgufMetadata("x.gguf");
        m.Add("tokenizer.ggml.model", "llama");
        var e = Assert.Throws<GgufException>(() => GgufTokenizer.ToHfFiles(m));
        Assert.Contains("'tokenizer.ggml.model'", e.Message);
        m = new GgufMetadata("x.gguf");
        m.Add("tokenizer.ggml.model", "gpt2");
        m.Add("tokenizer.ggml.pre", "falcon");
        e = Assert.Throws<GgufException>(() => GgufTokenizer.ToHfFiles(m));
        Assert.Contains("'falcon'", e.Message);
        Assert.Contains("qwen2", e.Message);
    }
}
