using NativeReasoner.Model;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// <see cref="ICausalLM.ForwardCached(Tensor, IKvCache, ReadOnlySpan{int})"/>: decoding some rows of a shared cache
/// (as a serving scheduler does) against each sequence alone in its own cache (the single-sequence path), for the
/// MLA cache (DeepSeek-V3) and the GQA cache (Qwen2, Llama).
/// </summary>
public class CacheRowsDecodeTests
{
    public static TheoryData<string> Fixtures => new() { "deepseek-v3-tiny-yarn", "qwen2-tiny-ref", "llama-tiny-ref" };

    private static float[] Alone(ICausalLM model, long[] prompt, long[] fed)
    {
        // The single-sequence path: prefill through Forward, then one ForwardCached per fed token.
        using var noGrad = Tensor.NoGrad();
        using var cache = model.CreateCache(1, 64);
        using (new TensorScope()) model.Forward(Tensor.FromArray(prompt, [1, prompt.Length]), cache);
        float[] last = [];
        foreach (long t in fed)
        {
            using var scope = new TensorScope();
            last = model.ForwardCached(Tensor.FromArray([t], [1, 1]), cache).ToArray();
        }
        return last;
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void RowsOfASharedCache_DecodeAsEachSequenceAlone(string fixture)
    {
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        model.Eval();
        int v = model.Config.VocabSize;
        long[][] prompts = [[5, 17, 33, 2, 9, 41, 60], [7, 3], [12, 50, 44, 44, 8]];
        // Sequence i lives in cache row rows[i] of a 5-row cache; rows 1 and 3 are never touched.
        int[] rows = [4, 0, 2];
        using var noGrad = Tensor.NoGrad();
        using var cache = model.CreateCache(5, 64);
        cache.Lengths[1] = 3;
        for (int i = 0; i < prompts.Length; i++)
        {
            // A prefill through the rows path: S prompt tokens after an empty row.
            using var scope = new TensorScope();
            var logits = model.ForwardCached(Tensor.FromArray(prompts[i], [1, prompts[i].Length]), cache, [rows[i]]);
            Assert.Equal([1, prompts[i].Length, v], logits.Shape);
            Assert.Equal(prompts[i].Length, cache.Lengths[rows[i]]);
        }
        var fed = prompts.Select(_ => new List<long>()).ToArray();
        // Steps over changing subsets, in scrambled order: all three, then two (one left), then the three again.
        int[][] steps = [[0, 1, 2], [2, 0], [1, 2, 0], [0]];
        foreach (var step in steps)
        {
            using var scope = new TensorScope();
            var ids = step.Select(i => (long)(3 + 7 * i + fed[i].Count)).ToArray();
            var stepRows = step.Select(i => rows[i]).ToArray();
            var logits = model.ForwardCached(Tensor.FromArray(ids, [step.Length, 1]), cache, stepRows).ToArray();
            for (int j = 0; j < step.Length; j++)
            {
                int i = step[j];
                fed[i].Add(ids[j]);
                var expected = Alone(model, prompts[i], fed[i].ToArray());
                double err = RelError(logits.AsSpan(j * v, v), expected);
                Assert.True(err <= 1e-4, $"{fixture}: sequence {i} after {fed[i].Count} tokens: relative error {err}");
                Assert.Equal(prompts[i].Length + fed[i].Count, cache.Lengths[rows[i]]);
            }
        }
        Assert.Equal(3, cache.Lengths[1]);
        Assert.Equal(0, cache.Lengths[3]);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void BadRows_FailClearly(string fixture)
    {
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();
        using var cache = model.CreateCache(3, 16);
        var ids = Tensor.FromArray([1L, 2L], [2, 1]);
        var e = Assert.Throws<ArgumentException>(() => model.ForwardCached(ids, cache, [1, 1]));
        Assert.Contains("cache row 1 is listed twice", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.ForwardCached(ids, cache, [0, 3]));
        Assert.Contains("cache row 3 is outside the cache's 3 sequences", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.ForwardCached(ids, cache, [0]));
        Assert.Contains("one per input sequence expected (2), got 1", e.Message);
        Assert.All(cache.Lengths, l => Assert.Equal(0, l));
    }
}
