using NativeReasoner.Kernels;
using Xunit;
using static NativeReasoner.Tests.Kernels.KernelTestUtil;

namespace NativeReasoner.Tests.Kernels;

public unsafe class ReductionKernelTests
{
    public static readonly (int outer, int dim, int inner)[] Shapes =
    [
        (1, 1, 1), (1, 7, 1), (13, 31, 1), (3, 65537, 1), (1021, 13, 1), (1, 1, 7), (7, 13, 31),
        (2, 31, 1021), (1, 127, 4099), (31, 1, 127), (5, 3, 17),
    ];

    [Fact]
    public void Reduce_MaxMin_NaNPropagatesWithFirstIndex()
    {
        var rng = new Random(901);
        foreach (var (outer, dim, inner) in ((int, int, int)[])[(4, 37, 1), (3, 9, 33)])
            foreach (var op in (ReduceOp[])[ReduceOp.Max, ReduceOp.Min])
            {
                var x = Uniform(rng, (long)outer * dim * inner);
                for (int i = 3; i < x.Length; i += 29) x[i] = float.NaN;
                var yr = new float[outer * inner];
                var yc = new float[outer * inner];
                var ar = new int[outer * inner];
                var ac = new int[outer * inner];
                fixed (float* px = x, pr = yr, pc = yc)
                fixed (int* par = ar, pac = ac)
                {
                    Ref.Reduce(op, px, pr, outer, dim, inner, par);
                    Cpu.Reduce(op, px, pc, outer, dim, inner, pac);
                }
                AssertExact<float>(yc, yr, $"{op} NaN");
                AssertExact<int>(ac, ar, $"arg{op} NaN");
                Assert.Contains(yr, float.IsNaN);
            }
    }

    [Fact]
    public void Reference_Reduce_HandValues()
    {
        float[] x = [1, 5, 2, 5, -1, 0]; // [1, 3, 2]: columns (1, 2, -1) and (5, 5, 0)
        var y = new float[2];
        var a = new int[2];
        fixed (float* px = x, py = y)
        fixed (int* pa = a)
        {
            Ref.Reduce(ReduceOp.Max, px, py, 1, 3, 2, pa);
            Assert.Equal([2f, 5f], y);
            Assert.Equal([1, 0], a); // tie 5 at d = 0 and 1 → first
            Ref.Reduce(ReduceOp.Mean, px, py, 1, 3, 2, null);
            Assert.Equal([2f / 3f, 10f / 3f], y);
        }
    }
}
