// Source: PyTorch's broadcasting and strided-tensor semantics (elementwise ops, Tensor.copy_).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>An elementwise function of two floats at three widths. Implemented by small structs so the JIT
/// specialises and inlines each use of <see cref="SimdMap.Map2{T}"/>.</summary>
internal interface IMap2
{
    float Apply(float a, float b);
    Vector256<float> Apply(Vector256<float> a, Vector256<float> b);
    Vector512<float> Apply(Vector512<float> a, Vector512<float> b);
}

/// <summary>An elementwise function of three floats at three widths.</summary>
internal interface IMap3
{
    float Apply(float a, float b, float c);
    Vector256<float> Apply(Vector256<float> a, Vector256<float> b, Vector256<float> c);
    Vector512<float> Apply(Vector512<float> a, Vector512<float> b, Vector512<float> c);
}

internal static unsafe class SimdMap
{
    /// <summary>r[i] = op(a[i], b[i]); r may alias a or b exactly (each lane is read before it is written).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Map2<T>(T op, float* a, float* b, float* r, long n) where T : struct, IMap2
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
                Vector512.Store(op.Apply(Vector512.Load(a + i), Vector512.Load(b + i)), r + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
                Vector256.Store(op.Apply(Vector256.Load(a + i), Vector256.Load(b + i)), r + i);
        }
        for (; i < n; i++) r[i] = op.Apply(a[i], b[i]);
    }

    /// <summary>r[i] = op(a[i], b[i], c[i]); r may alias an input exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Map3<T>(T op, float* a, float* b, float* c, float* r, long n) where T : struct, IMap3
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
                Vector512.Store(op.Apply(Vector512.Load(a + i), Vector512.Load(b + i), Vector512.Load(c + i)), r + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
                Vector256.Store(op.Apply(Vector256.Load(a + i), Vector256.Load(b + i), Vector256.Load(c + i)), r + i);
        }
        for (; i < n; i++) r[i] = op.Apply(a[i], b[i], c[i]);
    }
}
