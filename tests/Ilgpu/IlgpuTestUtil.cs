using NativeReasoner.Kernels.Ilgpu;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>
/// Device buffers for one kernel test: uploads host arrays through <see cref="IlgpuMemory"/>, downloads
/// results, and frees everything on dispose.
/// </summary>
internal sealed unsafe class DeviceArena : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];

    public static IlgpuBackend Backend => IlgpuBackend.Shared;
    public static IlgpuKernels K => Backend.Kernels;
    public static ReferenceKernels Ref => ReferenceKernels.Instance;
    private static IlgpuMemory Mem => Backend.Memory;

    public T* Up<T>(T[] host) where T : unmanaged
    {
        long bytes = (long)host.Length * sizeof(T);
        var b = Mem.Allocate(bytes);
        _buffers.Add(b);
        fixed (T* p = host) Mem.CopyFromHost(p, b.Pointer, bytes);
        return (T*)b.Pointer;
    }

    /// <summary>A zero-filled device array of n elements.</summary>
    public T* Alloc<T>(long n) where T : unmanaged => Up(new T[n]);

    public T[] Down<T>(T* p, long n) where T : unmanaged
    {
        var host = new T[n];
        fixed (T* h = host) Mem.CopyToHost((byte*)p, h, n * sizeof(T));
        return host;
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Release();
        _buffers.Clear();
    }
}

internal static class IlgpuTestUtil
{
    public static float[] Rand(Random rng, long n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return a;
    }

    /// <summary>‖actual − expected‖₂ / ‖expected‖₂ ≤ tol; a NaN or infinity must match exactly; NaN never passes otherwise.</summary>
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e) || float.IsNaN(a))
            {
                Assert.True(float.IsNaN(e) && float.IsNaN(a), $"{what}: NaN mismatch at {i}: ilgpu {a}, reference {e}");
                continue;
            }
            if (float.IsInfinity(e) || float.IsInfinity(a))
            {
                Assert.True(e == a, $"{what}: infinity mismatch at {i}: ilgpu {a}, reference {e}");
                continue;
            }
            double d = (double)a - e;
            num += d * d;
            den += (double)e * e;
        }
        double err = den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num);
        Assert.True(err <= tol, $"{what}: relative error {err:E3} > {tol:E1}");
    }

    public static void Exact<T>(ReadOnlySpan<T> actual, ReadOnlySpan<T> expected, string what) where T : IEquatable<T>
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(actual[i].Equals(expected[i]), $"{what}: mismatch at {i}: ilgpu {actual[i]}, reference {expected[i]}");
    }

    public const double Elementwise = 1e-5;
    public const double Accumulating = 1e-4;
}

/// <summary>Says which accelerator the ILGPU tests ran on (visible in the test log).</summary>
public class IlgpuAcceleratorInfo(ITestOutputHelper output)
{
    [Fact]
    public void ReportsAccelerator()
    {
        var b = IlgpuBackend.Shared;
        output.WriteLine($"ILGPU tests run on {b.Description}");
        Console.WriteLine($"[ilgpu] tests run on {b.Description}");
        Assert.False(b.Memory.IsHost);
    }
}
