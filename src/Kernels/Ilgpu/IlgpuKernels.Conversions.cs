using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// Conversions work on bit patterns (Interop.FloatAsInt / IntAsFloat): the same rounding on every accelerator.
public sealed unsafe partial class IlgpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<ushort>>? _toBf16, _toHalf;
    private Action<Index1D, ArrayView<ushort>, ArrayView<float>>? _fromBf16, _fromHalf;
    private Action<Index1D, ArrayView<long>, ArrayView<float>>? _i64ToF;
    private Action<Index1D, ArrayView<float>, ArrayView<long>>? _fToI64;
    private Action<Index1D, ArrayView<int>, ArrayView<long>>? _i32ToI64;
    private Action<Index1D, ArrayView<long>, ArrayView<int>>? _i64ToI32;

    public void FloatToBFloat16(float* x, ushort* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_toBf16 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>>(ToBf16Kernel))(Extent(n), F(x), U(y));
    }

    /// <summary>Round to nearest even on the upper 16 bits; NaN stays NaN (made quiet).</summary>
    private static void ToBf16Kernel(Index1D i, ArrayView<float> x, ArrayView<ushort> y)
    {
        float f = x[i];
        uint bits = Interop.FloatAsInt(f);
        if (float.IsNaN(f)) { y[i] = (ushort)((bits >> 16) | 0x0040u); return; }
        uint lsb = (bits >> 16) & 1u;
        y[i] = (ushort)((bits + 0x7FFFu + lsb) >> 16);
    }

    public void BFloat16ToFloat(ushort* x, float* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_fromBf16 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(FromBf16Kernel))(Extent(n), U(x), F(y));
    }

    private static void FromBf16Kernel(Index1D i, ArrayView<ushort> x, ArrayView<float> y) =>
        y[i] = Interop.IntAsFloat((uint)x[i] << 16);

    public void FloatToHalf(float* x, ushort* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_toHalf ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>>(ToHalfKernel))(Extent(n), F(x), U(y));
    }

    /// <summary>IEEE binary32 → binary16, round to nearest even, overflow → ±inf, NaN keeps its top payload bits (as System.Half).</summary>
    private static void ToHalfKernel(Index1D i, ArrayView<float> x, ArrayView<ushort> y)
    {
        uint bits = Interop.FloatAsInt(x[i]);
        uint sign = (bits >> 16) & 0x8000u;
        uint abs = bits & 0x7FFFFFFFu;
        uint h;
        if (abs > 0x7F800000u)
            h = 0x7E00u | ((abs & 0x7FFFFFu) >> 13);
        else if (abs >= 0x38800000u)
        {
            // Normal in half: rebias the exponent (127 → 15), then round 23 → 10 mantissa bits to even.
            uint r = abs - 0x38000000u;
            h = (r + 0xFFFu + ((r >> 13) & 1u)) >> 13;
            if (h > 0x7C00u) h = 0x7C00u; // overflow (and inf) → inf
        }
        else if (abs <= 0x33000000u)
            h = 0; // ≤ 2^-25 rounds to zero (2^-25 itself is a tie, and 0 is even)
        else
        {
            // Subnormal in half: the value is m · 2^(e−150); in units of 2^-24 that is m >> (126 − e), rounded to even.
            int e = (int)(abs >> 23);
            uint m = (abs & 0x7FFFFFu) | 0x800000u;
            int shift = 126 - e;
            h = m >> shift;
            uint rem = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
            if (rem > halfway || (rem == halfway && (h & 1u) != 0)) h++;
        }
        y[i] = (ushort)(sign | h);
    }

    public void HalfToFloat(ushort* x, float* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_fromHalf ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(FromHalfKernel))(Extent(n), U(x), F(y));
    }

    private static void FromHalfKernel(Index1D i, ArrayView<ushort> x, ArrayView<float> y)
    {
        uint h = x[i];
        uint sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
        float r;
        if (e == 0x1Fu) r = Interop.IntAsFloat(sign | 0x7F800000u | (m << 13));
        else if (e == 0)
        {
            // Subnormal (or zero): m · 2^-24 is exact in float.
            float mag = m * 5.9604644775390625e-8f;
            r = Interop.IntAsFloat(sign | Interop.FloatAsInt(mag));
        }
        else r = Interop.IntAsFloat(sign | ((e + 112u) << 23) | (m << 13));
        y[i] = r;
    }

    public void Int64ToFloat(long* x, float* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_i64ToF ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<float>>(I64ToFKernel))(Extent(n), L(x), F(y));
    }

    private static void I64ToFKernel(Index1D i, ArrayView<long> x, ArrayView<float> y) => y[i] = x[i];

    public void FloatToInt64(float* x, long* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_fToI64 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>>(FToI64Kernel))(Extent(n), F(x), L(y));
    }

    /// <summary>Truncates toward zero, saturating, NaN → 0 (the .NET cast), spelled out so every backend agrees.</summary>
    private static void FToI64Kernel(Index1D i, ArrayView<float> x, ArrayView<long> y)
    {
        float f = x[i];
        long r;
        if (float.IsNaN(f)) r = 0;
        else if (f >= 9.223372036854775807E18f) r = long.MaxValue;
        else if (f <= -9.223372036854775808E18f) r = long.MinValue;
        else r = (long)f;
        y[i] = r;
    }

    public void Int32ToInt64(int* x, long* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_i32ToI64 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<long>>(I32ToI64Kernel))(Extent(n), I(x), L(y));
    }

    private static void I32ToI64Kernel(Index1D i, ArrayView<int> x, ArrayView<long> y) => y[i] = x[i];

    public void Int64ToInt32(long* x, int* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_i64ToI32 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<int>>(I64ToI32Kernel))(Extent(n), L(x), I(y));
    }

    /// <summary>Keeps the low 32 bits.</summary>
    private static void I64ToI32Kernel(Index1D i, ArrayView<long> x, ArrayView<int> y) => y[i] = unchecked((int)x[i]);
}
