// Source: ggml's quantize_row_*_ref / dequantize_row_* (ggml-quants.c): rows of blocks, row-major matrices.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Quant;

/// <summary>
/// Rows and matrices of weights to and from the packed formats. A matrix [rows, k] becomes rows ·
/// <see cref="QuantFormatInfo.RowBytes"/> bytes, row after row, each row its k / BlockSize blocks in order.
/// </summary>
public static class BlockQuantizer
{
    /// <summary>
    /// x: [k] → one packed row. k must be a multiple of the block size; every weight must be finite (a NaN or
    /// infinity would poison its whole block's scale, so it is an error naming the index).
    /// </summary>
    public static void QuantizeRow(QuantFormat format, ReadOnlySpan<float> x, Span<byte> row)
    {
        long bytes = format.RowBytes(x.Length);
        if (!format.CanQuantize())
            throw new NotSupportedException($"{format.Name()} is decode-only: weights cannot be quantised to it");
        if (row.Length < bytes)
            throw new ArgumentException(
                $"a {format.Name()} row of {x.Length} weights needs {bytes} bytes, got {row.Length}");
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i]))
                throw new ArgumentException($"weight {i} of the row is {x[i]}: only finite weights can be quantised");
        int bs = format.BlockSize(), bb = format.BlockBytes();
        for (int b = 0; b < x.Length / bs; b++)
        {
            ReadOnlySpan<float> src = x.Slice(b * bs, bs);
            Span<byte> dst = row.Slice(b * bb, bb);
            switch (format)
            {
                case QuantFormat.BF16: WriteBf16(src[0], dst); break;
                case QuantFormat.Q8_0: Q8_0Block.Quantize(src, dst); break;
                case QuantFormat.Q4_0: Q4_0Block.Quantize(src, dst); break;
                case QuantFormat.Q4_K: Q4_KBlock.Quantize(src, dst); break;
            }
        }
    }

    /// <summary>One packed row → y: [k] (k a multiple of the block size).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DequantizeRow(QuantFormat format, ReadOnlySpan<byte> row, Span<float> y)
    {
        long bytes = format.RowBytes(y.Length);
        if (row.Length < bytes)
            throw new ArgumentException(
                $"a {format.Name()} row of {y.Length} weights needs {bytes} bytes, got {row.Length}");
        if (format == QuantFormat.BF16)
        {
            WidenBf16(MemoryMarshal.Cast<byte, ushort>(row[..(int)bytes]), y);
            return;
        }
        int bs = format.BlockSize(), bb = format.BlockBytes();
        for (int b = 0; b < y.Length / bs; b++)
        {
            ReadOnlySpan<byte> src = row.Slice(b * bb, bb);
            Span<float> dst = y.Slice(b * bs, bs);
            switch (format)
            {
                case QuantFormat.BF16:
                    dst[0] = BitConverter.UInt32BitsToSingle((uint)(src[0] | (src[1] << 8)) << 16);
                    break;
                case QuantFormat.Q8_0: Q8_0Block.Dequantize(src, dst); break;
                case QuantFormat.Q4_0: Q4_0Block.Dequantize(src, dst); break;
                case QuantFormat.Q4_K: Q4_KBlock.Dequantize(src, dst); break;
                case QuantFormat.Q6_K: Q6_KBlock.Dequantize(src, dst); break;
            }
        }
    }

    /// <summary>bf16 bits → float32: each bf16 is the top half of its float32, so a widening and a 16-bit shift
    /// (vectorised: bf16 rows are widened panel by panel for every prefill product with a bf16 weight).</summary>
    private static void WidenBf16(ReadOnlySpan<ushort> bits, Span<float> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i + Vector<ushort>.Count <= y.Length; i += Vector<ushort>.Count)
            {
                Vector.Widen(new Vector<ushort>(bits[i..]), out Vector<uint> low, out Vector<uint> high);
                Vector.AsVectorSingle(low << 16).CopyTo(y[i..]);
                Vector.AsVectorSingle(high << 16).CopyTo(y[(i + Vector<uint>.Count)..]);
            }
        for (; i < y.Length; i++) y[i] = BitConverter.UInt32BitsToSingle((uint)bits[i] << 16);
    }

    /// <summary>w: [rows, k] row-major → rows packed rows (rows · RowBytes(k) bytes).</summary>
    public static byte[] Quantize(QuantFormat format, ReadOnlySpan<float> w, int rows, int k)
    {
        if (rows < 0 || k < 0 || (long)rows * k != w.Length)
            throw new ArgumentException($"a [{rows}, {k}] matrix needs {(long)rows * k} weights, got {w.Length}");
        long rowBytes = format.RowBytes(k);
        var packed = new byte[rows * rowBytes];
        for (int r = 0; r < rows; r++)
            QuantizeRow(format, w.Slice(r * k, k), packed.AsSpan((int)(r * rowBytes), (int)rowBytes));
        return packed;
    }

    /// <summary>rows packed rows → w: [rows, k].</summary>
    public static float[] Dequantize(QuantFormat format, ReadOnlySpan<byte> packed, int rows, int k)
    {
        long rowBytes = format.RowBytes(k);
        if (rows < 0 || packed.Length != rows * rowBytes)
            throw new ArgumentException(
                $"{rows} {format.Name()} rows of {k} weights need {rows * rowBytes} bytes, got {packed.Length}");
        var w = new float[(long)rows * k];
        for (int r = 0; r < rows; r++)
            DequantizeRow(format, packed.Slice((int)(r * rowBytes), (int)rowBytes), w.AsSpan(r * k, k));
        return w;
    }

    // float32 → bfloat16 bits, round to nearest even (finite input, checked by the caller).
    private static void WriteBf16(float x, Span<byte> dst)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
        dst[0] = (byte)rounded;
        dst[1] = (byte)(rounded >> 8);
    }
}
