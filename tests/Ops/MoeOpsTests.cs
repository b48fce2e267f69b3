using NativeReasoner.Autograd;
using NativeReasoner.Kernels;
using Xunit;

namespace NativeReasoner.Tests.Ops;

/// <summary>The differentiable MoE ops (dispatch, grouped SwiGLU experts, weighted combine, score gather) against finite differences.</summary>
public sealed class MoeOpsTests
{
    [Fact]
    public void RoutedExperts_GradientsMatchFiniteDifferences()
    {
        // n = 5 tokens, k = 2 slots, d = 6, I = 4, E = 5 experts; ids only in [0, 4): expert 4 gets no rows.
        const int n = 5, k = 2, d = 6, inter = 4, e = 5;
        var rng = new Random(3);
        var ids = new int[n * k];
        for (int t = 0; t < n; t++)
        {
            ids[t * k] = rng.Next(4);
            ids[t * k + 1] = (ids[t * k] + 1 + rng.Next(3)) % 4;
        }
        using var scope = new TensorScope();
        var indices = Tensor.FromArray(ids, [n, k]);
        var (offsets, order, position) = Functional.MoePermute(indices, e);
        Assert.Equal(0, offsets[5] - offsets[4]);
        var gen = new Generator(11);
        var inputs = new List<Tensor> { Tensor.Randn([n, d], gen), Tensor.Rand([n, k], gen) };
        for (int i = 0; i < e; i++) inputs.Add(Tensor.Randn([inter, d], gen) * 0.5f);
        for (int i = 0; i < e; i++) inputs.Add(Tensor.Randn([inter, d], gen) * 0.5f);
        for (int i = 0; i < e; i++) inputs.Add(Tensor.Randn([d, inter], gen) * 0.5f);
        // Expert 4 has no rows: its weights get no gradient, so they are left out of the check.
        var checkedInputs = inputs.Where((_, i) => i < 2 || (i - 2) % e != 4).ToArray();
        GradCheck.Check(xs =>
        {
            var all = new List<Tensor>(inputs);
            int j = 0;
            for (int i = 0; i < all.Count; i++)
                if (i < 2 || (i - 2) % e != 4) all[i] = xs[j++];
            var sorted = Functional.MoeDispatch(all[0], position, k);
            var ys = Functional.GroupedSwiGlu(sorted, offsets, all.GetRange(2, e), all.GetRange(2 + e, e), all.GetRange(2 + 2 * e, e));
            return Functional.MoeCombine(ys, position, all[1]);
        }, checkedInputs, name: "moe routed experts");
    }

    [Fact]
    public void GatherScores_GradientGoesToTheChosenExperts()
    {
        using var scope = new TensorScope();
        var scores = Tensor.Rand([3, 6], new Generator(2));
        var (indices, weights) = Functional.MoeRoute(scores, null, 2, 1, 2, useBias: false, normalize: true, scale: 2.5f);
        GradCheck.Check(xs =>
        {
            var w = Functional.MoeGatherScores(xs[0], indices);
            return w / w.Sum(1, keepDim: true) * 2.5f;
        }, [scores], name: "moe gather scores");
        // The kernel's own weights are those of the composed, differentiable path.
        var composed = Functional.MoeGatherScores(scores, indices);
        composed = composed / composed.Sum(1, keepDim: true) * 2.5f;
        var a = weights.ToArray();
        var b = composed.ToArray();
        for (int i = 0; i < a.Length; i++) Assert.Equal(b[i], a[i], 5);
        Assert.Equal(DType.Int32, indices.DType);
    }
}
