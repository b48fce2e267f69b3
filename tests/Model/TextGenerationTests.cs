using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

public sealed class TextGenerationTests(ITestOutputHelper output)
{
    private static DeepseekV3ForCausalLM Golden() => DeepseekV3Checkpoint.Load(Fixture("deepseek-v3-tiny-yarn"));

    /// <summary>The argmax of the last position of a full forward over prompt + generated so far.</summary>
    private static long GreedyByFullForward(DeepseekV3ForCausalLM m, List<long> seq)
    {
        using var ng = Tensor.NoGrad();
        using var scope = new TensorScope();
        var logits = m.Forward(Tensor.FromArray(seq.ToArray(), [1, seq.Count])).ToArray();
        int v = m.Config.VocabSize;
        return TextGeneration.Sample(logits.AsSpan((seq.Count - 1) * v, v), new GenerationOptions { Temperature = 0 }, new Generator(0));
    }

    [Fact]
    public void BatchedGreedyWithDifferentPromptLengthsMatchesFullForwards()
    {
        using var m = Golden();
        long[][] prompts = [[5, 17, 33, 2, 9, 41, 60], [7, 3], [12, 70, 44, 44, 8]];
        var result = TextGeneration.Generate(m, prompts, new GenerationOptions { MaxNewTokens = 6, Temperature = 0, EosTokenIds = [] }, new Generator(1));
        output.WriteLine($"cache: {result.CacheBytesPerToken} bytes per token ({m.Config.NumHiddenLayers} layers × {m.Config.CacheWidthPerLayer} floats)");
        Assert.Equal(2L * (24 + 8) * 4, result.CacheBytesPerToken);
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(6, result.Tokens[i].Length);
            Assert.Equal(FinishReason.Length, result.FinishReasons[i]);
            var seq = prompts[i].ToList();
            foreach (var tok in result.Tokens[i])
            {
                Assert.Equal(GreedyByFullForward(m, seq), tok);
                seq.Add(tok);
            }
        }
    }

    [Fact]
    public void SamplingIsSeededAndStopsOnEosAndStopStrings()
    {
        using var m = Golden();
        long[][] prompts = [[5, 17, 33], [9, 9, 9, 9]];
        var opts = new GenerationOptions { MaxNewTokens = 12, Temperature = 0.8f, TopK = 20, TopP = 0.9f, EosTokenIds = [] };
        var a = TextGeneration.Generate(m, prompts, opts, new Generator(42));
        var b = TextGeneration.Generate(m, prompts, opts, new Generator(42));
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.All(a.Tokens, t => Assert.Equal(12, t.Length));

        // EOS: make the first sampled token of sequence 0 the end-of-sequence id.
        long first = a.Tokens[0][0];
        var e = TextGeneration.Generate(m, prompts, opts with { EosTokenIds = [first] }, new Generator(42));
        Assert.Equal([first], e.Tokens[0]);
        Assert.Equal(FinishReason.Eos, e.FinishReasons[0]);

        // Stop string over a toy detokenizer (one letter per id).
        string Text(IReadOnlyList<long> ids) => string.Concat(ids.Select(i => (char)('A' + i % 26)));
        string stop = Text([a.Tokens[1][2]]);
        var s = TextGeneration.Generate(m, prompts, opts with { StopStrings = [stop], Detokenize = Text }, new Generator(42));
        Assert.Equal(FinishReason.StopString, s.FinishReasons[1]);
        Assert.EndsWith(stop, Text(s.Tokens[1]));
        Assert.True(s.Tokens[1].Length <= 3);
    }

    [Fact]
    public void SamplerFilters()
    {
        float[] logits = [0f, 3f, 1f, 2.9f, -5f];
        var rng = new Generator(3);
        Assert.Equal(1, TextGeneration.Sample(logits, new GenerationOptions { Temperature = 0 }, rng));
        Assert.Equal(1, TextGeneration.Sample(logits, new GenerationOptions { TopK = 1 }, rng));
        for (int i = 0; i < 200; i++)
        {
            long t = TextGeneration.Sample(logits, new GenerationOptions { TopK = 2, Temperature = 1.5f }, rng);
            Assert.True(t is 1 or 3);
            // p(1) ≈ 0.48, so top-p 0.4 keeps only token 1.
            Assert.Equal(1, TextGeneration.Sample(logits, new GenerationOptions { TopP = 0.4f }, rng));
        }
    }
}
