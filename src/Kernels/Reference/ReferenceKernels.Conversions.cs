// Source: IEEE 754 binary16 and bfloat16 (the upper half of binary32, round to nearest even), as torch.Tensor.to.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void FloatToBFloat16(float* x, ushort* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = ToBFloat16(x[i]);
    }

    /// <summary>Round to nearest even on the upper 16 bits; NaN keeps its sign and top payload, made quiet.</summary>
    internal static ushort ToBFloat16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x0040);
        // Adding 0x7FFF rounds up anything above the halfway point; the extra lsb makes exact ties go to even.
        uint lsb = (bits >> 16) & 1;
        return (ushort)((bits + 0x7FFFu + lsb) >> 16);
    }

    public void BFloat16ToFloat(ushort* x, float* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = BitConverter.UInt32BitsToSingle((uint)x[i] << 16);
    }

    public void FloatToHalf(float* x, ushort* y, long n)
    {
        // System.Half's conversion is IEEE round-to-nearest-even with overflow to infinity.
        for (long i = 0; i < n; i++) y[i] = BitConverter.HalfToUInt16Bits((Half)x[i]);
    }

    public void HalfToFloat(ushort* x, float* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = (float)BitConverter.UInt16BitsToHalf(x[i]);
    }

    public void Int64ToFloat(long* x, float* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = x[i];
    }

    /// <summary>Truncates toward zero; .NET casts saturate out-of-range values and map NaN to 0.</summary>
    public void FloatToInt64(float* x, long* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = (long)x[i];
    }

    public void Int32ToInt64(int* x, long* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = x[i];
    }

    /// <summary>Keeps the low 32 bits (ids are expected to fit).</summary>
    public void Int64ToInt32(long* x, int* y, long n)
    {
        for (long i = 0; i < n; i++) y[i] = unchecked((int)x[i]);
    }
}
