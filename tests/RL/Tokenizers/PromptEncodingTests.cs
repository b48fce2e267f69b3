using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL.Tokenizers;

/// <summary>
/// Prompts for generate, chat, eval and training get BOS first exactly when the tokenizer's configuration asks for
/// it (HF Python's add_special_tokens=True), and never twice when the text already begins with it.
/// </summary>
public class PromptEncodingTests
{
    [Fact]
    public void DeepseekAndLlama_get_bos_first()
    {
        var ds = RealTokenizers.Get(RealTokenizers.DeepseekV3);
        Assert.True(PromptEncoding.AddsBos(ds));
        Assert.Equal([0L, .. ds.Encode("User: 2+2?").Select(i => (long)i)], ds.EncodePrompt("User: 2+2?"));
        var llama = RealTokenizers.Get(RealTokenizers.Llama31);
        Assert.Equal([128000L, .. llama.Encode("Hello").Select(i => (long)i)], llama.EncodePrompt("Hello"));
    }

    [Fact]
    public void A_text_that_begins_with_bos_keeps_one()
    {
        // R1's chat template writes bos_token itself.
        var ds = RealTokenizers.Get(RealTokenizers.DeepseekV3);
        var ids = ds.EncodePrompt("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>");
        Assert.Equal(0L, ids[0]);
        Assert.NotEqual(0L, ids[1]);
        Assert.Equal(ds.Encode("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>").Select(i => (long)i), ids);
    }

    [Fact]
    public void Qwen_and_the_character_tokenizer_are_unchanged()
    {
        var qwen = RealTokenizers.Get(RealTokenizers.Qwen3);
        Assert.False(PromptEncoding.AddsBos(qwen));
        Assert.Equal(qwen.Encode("Hello there").Select(i => (long)i), qwen.EncodePrompt("Hello there"));
        var chars = new CharTokenizer();
        Assert.False(PromptEncoding.AddsBos(chars));
        string text = PromptTemplate.Default.Format("1+1");
        Assert.Equal(chars.Encode(text).Select(i => (long)i), chars.EncodePrompt(text));
    }
}
