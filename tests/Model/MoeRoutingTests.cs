using NativeReasoner.Model;
using Xunit;

namespace NativeReasoner.Tests.Model;

public sealed class MoeRoutingTests
{
    [Fact]
    public void DroppedGroupsAreMinusInfinityNotZero()
    {
        // 2 groups of 3, keep 1, top-2. Biased scores are negative in the kept group: a 0-fill of the
        // dropped group would wrongly pick its experts (deepseek-v3-notes 4).
        float[] s = [0.1f, 0.2f, 0.3f, 0.05f, 0.05f, 0.05f];
        float[] bias = [-0.5f, -0.5f, -0.5f, -0.9f, -0.9f, -0.9f];
        var idx = MoeGate.SelectExperts(s, bias, n: 1, e: 6, k: 2, groups: 2, keepGroups: 1, topTwoGroupScore: true);
        Assert.Equal([2, 1], idx);
    }

    [Fact]
    public void GroupScoreIsTopTwoSumWithBiasAndMaxWithout()
    {
        // Group 0: one strong expert (0.9) and weak ones; group 1: two good experts (0.6, 0.6).
        float[] s = [0.9f, 0.0f, 0.0f, 0.6f, 0.6f, 0.0f];
        var topTwo = MoeGate.SelectExperts(s, new float[6], 1, 6, 1, 2, 1, topTwoGroupScore: true);
        Assert.Equal([3], topTwo);                       // 1.2 > 0.9: group 1 wins
        var max = MoeGate.SelectExperts(s, null, 1, 6, 1, 2, 1, topTwoGroupScore: false);
        Assert.Equal([0], max);                          // V2 rule: max 0.9 > 0.6
    }

    [Fact]
    public void BiasSelectsButDoesNotWeight()
    {
        var c = DeepseekV3Config.Preset("tiny") with { NumHiddenLayers = 2 };
        using var model = new DeepseekV3ForCausalLM(c, new Generator(5));
        var moe = model.MoeLayers.Single();
        // A huge bias on expert 6 forces it into every token's top-2.
        var bias = new float[c.NRoutedExperts];
        bias[6] = 100f;
        moe.Gate.ScoreCorrectionBias!.CopyFrom_(Tensor.FromArray(bias, bias.Length));
        using var scope = new TensorScope();
        var x = Tensor.Randn([5, c.HiddenSize], new Generator(9));
        var r = moe.Gate.Route(x);
        var ids = r.Indices.ToInt64Array();
        for (int n = 0; n < 5; n++) Assert.Contains(6L, ids.AsSpan(n * 2, 2).ToArray());
        // Weights: unbiased sigmoid scores, normalised, × 2.5 → each row sums to 2.5 and all are < 2.5.
        var w = r.Weights.ToArray();
        for (int n = 0; n < 5; n++) Assert.Equal(2.5f, w[2 * n] + w[2 * n + 1], 4);
        Assert.All(w, v => Assert.InRange(v, 0f, 2.5f));
        r.Weights.Sum().Backward();
        Assert.NotNull(moe.Gate.Weight.Grad);
        Assert.False(moe.Gate.ScoreCorrectionBias.RequiresGrad);
    }

    [Fact]
    public void BiasUpdateMovesTowardBalanceAndLoadIsReported()
    {
        var c = DeepseekV3Config.Preset("tiny");
        using var model = new DeepseekV3ForCausalLM(c, new Generator(5));
        using (var scope = new TensorScope())
            model.Forward(Tensor.FromArray(Enumerable.Range(0, 24).Select(i => (long)(i * 7 % c.VocabSize)).ToArray(), [2, 12]));
        var load = model.ExpertLoad().Single().Value;
        Assert.Equal(2 * 12 * c.NumExpertsPerTok, load.Sum());
        double mean = load.Average();
        model.UpdateRouterBiases(0.01f);
        var bias = model.MoeLayers.Single().Gate.ScoreCorrectionBias!.ToArray();
        for (int i = 0; i < load.Length; i++)
            Assert.Equal(load[i] > mean ? -0.01f : load[i] < mean ? 0.01f : 0f, bias[i]);
        Assert.All(model.ExpertLoad().Single().Value, v => Assert.Equal(0, v));
    }
}
