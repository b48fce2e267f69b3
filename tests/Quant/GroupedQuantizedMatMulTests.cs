using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cpu.Quant;
using NativeReasoner.Kernels.Quant;
using Xunit;

namespace NativeReasoner.Tests.Quant;

/// <summary>
/// The CPU's grouped packed product (the routed experts in one pass) on every code path this machine runs: equal to
/// one <see cref="CpuKernels.QuantizedMatMul(QuantFormat, int, int, int, float*, byte*, float*)"/> per expert and set
/// on the same path — the activations of a row quantise the same wherever they are, so the results are identical.
/// The reference comparison is in the conformance suite (quantized-matmul/grouped/…).
/// </summary>
public sealed unsafe class GroupedQuantizedMatMulTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (var isa in new[] { "Scalar", "Avx2", "AvxVnni", "Avx512" })
            foreach (var format in new[] { QuantFormat.BF16, QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Q4_K })
                yield return [isa, format];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Grouped_equals_one_product_per_expert(string isaName, QuantFormat format)
    {
        var isa = Enum.Parse<QuantIsa>(isaName);
        if (!QuantIsas.Supported(isa)) return; // nothing to compare on a CPU without it
        var rng = new Random(17);
        int k = format == QuantFormat.BF16 ? 40 : format.BlockSize() == 32 ? 160 : 512;
        const int n = 23, sets = 2;
        // Empty experts, single rows, and one expert past the panel threshold (prefill's SGEMM path).
        int[] rows = [1, 0, 4, CpuKernels.PanelFromRows + 1, 0, 2, 1];
        int groups = rows.Length;
        var offsets = new int[groups + 1];
        for (int g = 0; g < groups; g++) offsets[g + 1] = offsets[g] + rows[g];
        int m = offsets[groups];
        var x = new float[m * k];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var packed = new byte[sets * groups][];
        for (int i = 0; i < packed.Length; i++)
        {
            var w = new float[n * k];
            for (int j = 0; j < w.Length; j++) w[j] = (float)(rng.NextDouble() * 0.2 - 0.1);
            packed[i] = BlockQuantizer.Quantize(format, w, n, k);
        }
        var expected = new[] { new float[m * n], new float[m * n] };
        var actual = new[] { new float[m * n], new float[m * n] };
        var handles = packed.Select(p => System.Runtime.InteropServices.GCHandle.Alloc(p,
            System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
        try
        {
            byte** w = stackalloc byte*[packed.Length];
            for (int i = 0; i < packed.Length; i++) w[i] = (byte*)handles[i].AddrOfPinnedObject();
            fixed (float* px = x, e0 = expected[0], e1 = expected[1], a0 = actual[0], a1 = actual[1])
            fixed (int* off = offsets)
            {
                float*[] e = [e0, e1];
                for (int s = 0; s < sets; s++)
                    for (int g = 0; g < groups; g++)
                        if (rows[g] > 0)
                            // The grouped kernel takes the per-row dots below the panels (not the tiles).
                            CpuKernels.Instance.QuantizedMatMul(isa, format, rows[g], n, k, px + offsets[g] * k,
                                w[s * groups + g], e[s] + offsets[g] * n,
                                rows[g] < CpuKernels.PanelFromRows ? QuantizedPath.RowDots : QuantizedPath.Auto);
                float** y = stackalloc float*[] { a0, a1 };
                CpuKernels.Instance.GroupedQuantizedMatMul(isa, format, sets, groups, off, n, k, px, w, y);
            }
        }
        finally
        {
            foreach (var h in handles) h.Free();
        }
        for (int s = 0; s < sets; s++)
            for (int i = 0; i < m * n; i++)
                Assert.True(actual[s][i] == expected[s][i],
                    $"{isa} {format.Name()} set {s} element {i}: grouped {actual[s][i]}, per expert {expected[s][i]}");
    }

    [Fact]
    public void Descending_offsets_are_refused_naming_the_group()
    {
        var x = new float[64];
        var y = new float[64];
        var w = new byte[64];
        var e = Assert.Throws<ArgumentException>(() =>
        {
            fixed (float* px = x, py = y)
            fixed (byte* pw = w)
            {
                int* off = stackalloc int[] { 0, 2, 1 };
                byte** ws = stackalloc byte*[] { pw, pw };
                float** ys = stackalloc float*[] { py };
                CpuKernels.Instance.GroupedQuantizedMatMul(QuantFormat.Q8_0, 1, 2, off, 1, 32, px, ws, ys);
            }
        });
        Assert.Contains("offsets must ascend, got 2 then 1 at group 1", e.Message);
    }
}
