using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Reference;
using Xunit;

namespace NativeReasoner.Tests.Kernels;

/// <summary>Shared helpers for the CPU-vs-reference kernel tests.</summary>
internal static class KernelTestUtil
{
    public static ReferenceKernels Ref => ReferenceKernels.Instance;
    public static CpuKernels Cpu => CpuKernels.Instance;

    /// <summary>Awkward lengths: 1, odd, primes, past one SIMD block and past one parallel chunk.</summary>
    public static readonly int[] Sizes = [1, 7, 13, 31, 127, 1021, 4099, 65537];

    public static float[] Uniform(Random rng, long n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return a;
    }

    /// <summary>
    /// ‖actual − expected‖ / ‖expected‖ ≤ tol over the finite reference entries (absolute when ‖expected‖ = 0).
    /// A NaN or infinity must sit exactly where the reference has the same.
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tol, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e) || float.IsNaN(a))
            {
                if (!(float.IsNaN(e) && float.IsNaN(a)))
                    Assert.Fail($"{what}: NaN mismatch at {i}: actual {a}, expected {e}");
                continue;
            }
            if (float.IsInfinity(e) || float.IsInfinity(a))
            {
                if (e != a) Assert.Fail($"{what}: infinity mismatch at {i}: actual {a}, expected {e}");
                continue;
            }
            double d = (double)a - e;
            num += d * d;
            den += (double)e * e;
        }
        double err = den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num);
        Assert.True(err <= tol, $"{what}: relative error {err:E3} > {tol:E1}");
    }

    public static void AssertExact<T>(ReadOnlySpan<T> actual, ReadOnlySpan<T> expected, string what = "") where T : IEquatable<T>
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!actual[i].Equals(expected[i]))
                Assert.Fail($"{what}: mismatch at {i}: actual {actual[i]}, expected {expected[i]}");
    }

    /// <summary>Elements a strided view can reach: 1 + Σ (shape − 1)·stride.</summary>
    public static long Extent(int[] shape, long[] strides)
    {
        long e = 1;
        for (int a = 0; a < shape.Length; a++)
        {
            if (shape[a] == 0) return 0;
            e += (shape[a] - 1) * strides[a];
        }
        return e;
    }

    public static long[] Contiguous(int[] shape)
    {
        var s = new long[shape.Length];
        long st = 1;
        for (int a = shape.Length - 1; a >= 0; a--) { s[a] = st; st *= shape[a]; }
        return s;
    }

    public static long Count(int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }
}
