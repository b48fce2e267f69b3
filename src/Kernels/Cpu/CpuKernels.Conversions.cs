// Source: IEEE 754 binary16 and bfloat16 (the upper half of binary32, round to nearest even), as torch.Tensor.to.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    private struct ConvertState
    {
        public void* X, Y;
    }

    private static void RunConvert(void* x, void* y, long n, delegate*<void*, long, long, void> body)
    {
        var st = new ConvertState { X = x, Y = y };
        CpuParallel.For(n, ElementwiseMinChunk, body, &st);
    }

    public void FloatToBFloat16(float* x, ushort* y, long n) => RunConvert(x, y, n, &ToBf16Body);

    private static void ToBf16Body(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        float* x = (float*)st->X;
        ushort* y = (ushort*)st->Y;
        long i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= end - 32; i += 32)
                Vector512.Store(Vector512.Narrow(Bf16Bits(Vector512.Load(x + i)), Bf16Bits(Vector512.Load(x + i + 16))), y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= end - 16; i += 16)
                Vector256.Store(Vector256.Narrow(Bf16Bits(Vector256.Load(x + i)), Bf16Bits(Vector256.Load(x + i + 8))), y + i);
        }
        for (; i < end; i++) y[i] = Reference.ReferenceKernels.ToBFloat16(x[i]);
    }

    // Per lane: round to nearest even on the upper half (bits + 0x7FFF + lsb), NaN → upper half with the
    // quiet bit set. The result sits in the low 16 bits, ready for a truncating narrow.
    private static Vector512<uint> Bf16Bits(Vector512<float> v)
    {
        var bits = v.AsUInt32();
        var lsb = Vector512.ShiftRightLogical(bits, 16) & Vector512.Create(1u);
        var rounded = Vector512.ShiftRightLogical(bits + Vector512.Create(0x7FFFu) + lsb, 16);
        var quietNan = Vector512.ShiftRightLogical(bits, 16) | Vector512.Create(0x40u);
        var isNan = ~Vector512.Equals(v, v).AsUInt32();
        return Vector512.ConditionalSelect(isNan, quietNan, rounded);
    }

    private static Vector256<uint> Bf16Bits(Vector256<float> v)
    {
        var bits = v.AsUInt32();
        var lsb = Vector256.ShiftRightLogical(bits, 16) & Vector256.Create(1u);
        var rounded = Vector256.ShiftRightLogical(bits + Vector256.Create(0x7FFFu) + lsb, 16);
        var quietNan = Vector256.ShiftRightLogical(bits, 16) | Vector256.Create(0x40u);
        var isNan = ~Vector256.Equals(v, v).AsUInt32();
        return Vector256.ConditionalSelect(isNan, quietNan, rounded);
    }

    public void BFloat16ToFloat(ushort* x, float* y, long n) => RunConvert(x, y, n, &FromBf16Body);

    private static void FromBf16Body(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        ushort* x = (ushort*)st->X;
        float* y = (float*)st->Y;
        long i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= end - 32; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(x + i));
                Vector512.Store(Vector512.ShiftLeft(lo, 16).AsSingle(), y + i);
                Vector512.Store(Vector512.ShiftLeft(hi, 16).AsSingle(), y + i + 16);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= end - 16; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                Vector256.Store(Vector256.ShiftLeft(lo, 16).AsSingle(), y + i);
                Vector256.Store(Vector256.ShiftLeft(hi, 16).AsSingle(), y + i + 8);
            }
        }
        for (; i < end; i++) y[i] = BitConverter.UInt32BitsToSingle((uint)x[i] << 16);
    }

    public void FloatToHalf(float* x, ushort* y, long n) => RunConvert(x, y, n, &ToHalfBody);

    private static void ToHalfBody(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        for (long s = start; s < end; s += SpanChunk)
        {
            int len = (int)Math.Min(SpanChunk, end - s);
            TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>((float*)st->X + s, len), new Span<Half>((Half*)st->Y + s, len));
        }
    }

    public void HalfToFloat(ushort* x, float* y, long n) => RunConvert(x, y, n, &FromHalfBody);

    private static void FromHalfBody(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        for (long s = start; s < end; s += SpanChunk)
        {
            int len = (int)Math.Min(SpanChunk, end - s);
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)st->X + s, len), new Span<float>((float*)st->Y + s, len));
        }
    }

    // Id conversions: small tensors, plain loops are enough (and keep the exact cast semantics of the reference).
    public void Int64ToFloat(long* x, float* y, long n) => RunConvert(x, y, n, &I64ToF32Body);

    private static void I64ToF32Body(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        long* x = (long*)st->X;
        float* y = (float*)st->Y;
        for (long i = start; i < end; i++) y[i] = x[i];
    }

    public void FloatToInt64(float* x, long* y, long n) => RunConvert(x, y, n, &F32ToI64Body);

    private static void F32ToI64Body(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        float* x = (float*)st->X;
        long* y = (long*)st->Y;
        for (long i = start; i < end; i++) y[i] = (long)x[i];
    }

    public void Int32ToInt64(int* x, long* y, long n) => RunConvert(x, y, n, &I32ToI64Body);

    private static void I32ToI64Body(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        int* x = (int*)st->X;
        long* y = (long*)st->Y;
        for (long i = start; i < end; i++) y[i] = x[i];
    }

    public void Int64ToInt32(long* x, int* y, long n) => RunConvert(x, y, n, &I64ToI32Body);

    private static void I64ToI32Body(void* state, long start, long end)
    {
        var st = (ConvertState*)state;
        long* x = (long*)st->X;
        int* y = (int*)st->Y;
        for (long i = start; i < end; i++) y[i] = unchecked((int)x[i]);
    }
}
