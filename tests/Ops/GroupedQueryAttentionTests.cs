using Xunit;
using F = NativeReasoner.Functional;

namespace NativeReasoner.Tests.Ops;

/// <summary>
/// Functional.ScaledDotProductAttention with fewer K/V heads than query heads: values and gradients equal
/// multi-head attention on K/V repeated per query head (index_select on the heads axis, HF's repeat_kv order,
/// whose backward sums the copies), and a head count that does not divide gives an error naming both.
/// </summary>
public class GroupedQueryAttentionTests
{
    public static TheoryData<string> Devices => new() { "cpu", "reference" };

    [Theory]
    [MemberData(nameof(Devices))]
    public void EqualsMultiHeadAttentionOnRepeatedKv(string device)
    {
        var d = Device.Parse(device);
        // (Hq, Hkv, Tq, Tk, causal): groups of 3, MQA decode, groups of 2 after a cached prefix.
        foreach (var (hq, hkv, tq, tk, causal) in
                 new[] { (6, 2, 9, 9, false), (7, 1, 1, 13, true), (4, 2, 5, 19, true) })
        {
            using var scope = new TensorScope();
            var g = new Generator((ulong)(hq * 100 + tk));
            const int B = 2, Dk = 8, Dv = 6;
            var q = Tensor.Randn([B, hq, tq, Dk], g, device: d).RequiresGrad_();
            var k = Tensor.Randn([B, hkv, tk, Dk], g, device: d).RequiresGrad_();
            var v = Tensor.Randn([B, hkv, tk, Dv], g, device: d).RequiresGrad_();
            var dO = Tensor.Randn([B, hq, tq, Dv], g, device: d);

            var o = F.ScaledDotProductAttention(q, k, v, causal);
            Assert.Equal([B, hq, tq, Dv], o.Shape.ToArray());
            o.Backward(dO);
            float[] dq = q.Grad!.ToArray(), dk = k.Grad!.ToArray(), dv = v.Grad!.ToArray();

            // The same on explicitly repeated K/V: query head h reads K/V head h / (hq / hkv).
            var q2 = Tensor.FromArray(q.ToArray(), q.Shape.ToArray(), d).RequiresGrad_();
            var k2 = Tensor.FromArray(k.ToArray(), k.Shape.ToArray(), d).RequiresGrad_();
            var v2 = Tensor.FromArray(v.ToArray(), v.Shape.ToArray(), d).RequiresGrad_();
            var kvOfHead = Enumerable.Range(0, hq).Select(h => (long)(h / (hq / hkv))).ToArray();
            var heads = Tensor.FromArray(kvOfHead, [hq], d);
            var o2 = F.ScaledDotProductAttention(q2, k2.IndexSelect(1, heads), v2.IndexSelect(1, heads), causal);
            o2.Backward(dO);

            string what = $"device {device}, Hq {hq}, Hkv {hkv}, Tq {tq}, Tk {tk}, causal {causal}";
            AssertClose(o2.ToArray(), o.ToArray(), "o " + what);
            AssertClose(q2.Grad!.ToArray(), dq, "dq " + what);
            AssertClose(k2.Grad!.ToArray(), dk, "dk " + what);
            AssertClose(v2.Grad!.ToArray(), dv, "dv " + what);
        }
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void HeadCountsThatDoNotDivideAreAClearError(string device)
    {
        var d = Device.Parse(device);
        using var scope = new TensorScope();
        var q = Tensor.Zeros([1, 6, 3, 8], device: d);
        var k = Tensor.Zeros([1, 4, 3, 8], device: d);
        var e = Assert.Throws<ArgumentException>(() => F.ScaledDotProductAttention(q, k, k, causal: true));
        Assert.Contains("Hq = 6", e.Message);
        Assert.Contains("Hkv = 4", e.Message);

        // More K/V heads than query heads is not grouped attention either.
        var q2 = Tensor.Zeros([1, 2, 3, 8], device: d);
        Assert.Throws<ArgumentException>(() => F.ScaledDotProductAttention(q2, k, k, causal: true));

        // The axes before the heads must agree (batch 2 against 1), and k and v must have the same heads.
        var qb = Tensor.Zeros([2, 4, 3, 8], device: d);
        var eb = Assert.Throws<ArgumentException>(() => F.ScaledDotProductAttention(qb, k, k, causal: false));
        Assert.Contains("[2, 4, 3, 8]", eb.Message);
        var v = Tensor.Zeros([1, 2, 3, 8], device: d);
        Assert.Throws<ArgumentException>(() => F.ScaledDotProductAttention(q, k, v, causal: false));
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * (1 + Math.Abs(expected[i])),
                $"{what}: element {i} expected {expected[i]}, got {actual[i]}");
    }
}
