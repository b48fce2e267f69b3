using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using NativeReasoner.Kernels;

namespace NativeReasoner.IO;

/// <summary>Format constants and helpers shared by the reader, writer and checkpoint code.</summary>
internal static class SafetensorsFormat
{
    /// <summary>
    /// Largest header accepted. Real headers are kilobytes to a few megabytes; the cap keeps a
    /// hostile length field from making us allocate gigabytes before JSON parsing can fail.
    /// Same limit as the reference implementation.
    /// </summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    /// <summary>The dtype strings we understand, for error messages.</summary>
    public const string SupportedDTypes = "F32, F16, BF16, F8_E4M3, I32, I64";

    public static bool TryParseDType(string s, out DType dtype)
    {
        // Exact, case-sensitive match: the format defines upper-case names only.
        switch (s)
        {
            case "F32": dtype = DType.Float32; return true;
            case "F16": dtype = DType.Float16; return true;
            case "BF16": dtype = DType.BFloat16; return true;
            case "I32": dtype = DType.Int32; return true;
            case "I64": dtype = DType.Int64; return true;
            case "F8_E4M3": dtype = DType.Float8E4M3; return true;
            // Raw bytes: the packed block formats (DType.Packed), described by the file's metadata.
            case "U8": dtype = DType.Packed; return true;
            default: dtype = default; return false;
        }
    }

    public static string ToDTypeString(DType dtype) => dtype switch
    {
        DType.Float32 => "F32",
        DType.Float16 => "F16",
        DType.BFloat16 => "BF16",
        DType.Int32 => "I32",
        DType.Int64 => "I64",
        DType.Float8E4M3 => "F8_E4M3",
        DType.Packed => "U8",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "dtype has no safetensors name"),
    };

    public static string ShapeString(long[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>Element count with overflow detection; null if the product does not fit in a long.</summary>
    public static long? TryElementCount(long[] shape)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) return null;
            try { n = checked(n * d); }
            catch (OverflowException) { return null; }
        }
        return n;
    }

    /// <summary>Byte count for a shape and dtype; null on overflow.</summary>
    public static long? TryByteCount(DType dtype, long[] shape)
    {
        long? n = TryElementCount(shape);
        if (n is null) return null;
        try { return checked(n.Value * dtype.SizeOf()); }
        catch (OverflowException) { return null; }
    }

    /// <summary>
    /// Converts raw little-endian tensor bytes of a floating dtype to float32 (F8_E4M3 decoded without its
    /// block scale; <see cref="Fp8BlockDequant"/> applies the scale). Uses unaligned,
    /// explicitly little-endian reads so it is correct for any source offset and host order.
    /// </summary>
    public static void ConvertToFloat32(DType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (dtype)
        {
            case DType.Float32:
                if (BitConverter.IsLittleEndian)
                {
                    // Layouts match: a straight copy is by far the fastest path.
                    src.CopyTo(MemoryMarshal.AsBytes(dst));
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(i * 4, 4));
                }
                break;
            case DType.Float16:
                if (BitConverter.IsLittleEndian)
                {
                    // Reinterpreting avoids per-element slicing; x64/Arm64 tolerate unaligned loads.
                    ReadOnlySpan<Half> h = MemoryMarshal.Cast<byte, Half>(src);
                    for (int i = 0; i < dst.Length; i++) dst[i] = (float)h[i];
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src.Slice(i * 2, 2));
                }
                break;
            case DType.BFloat16:
                // bfloat16 is the upper half of an IEEE float32, so widening is a 16-bit shift
                // (exact, including NaN/Inf/subnormals).
                if (BitConverter.IsLittleEndian)
                {
                    WidenBFloat16(MemoryMarshal.Cast<byte, ushort>(src), dst);
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                    {
                        uint bits = BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(i * 2, 2));
                        dst[i] = BitConverter.UInt32BitsToSingle(bits << 16);
                    }
                }
                break;
            case DType.Float8E4M3:
                Float8E4M3.Decode(src, dst);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a floating dtype");
        }
    }

    /// <summary>
    /// BF16 → F32 for host-order input. Checkpoints hold billions of BF16 weights, so the bulk is
    /// done a SIMD register at a time: widen u16 lanes to u32 and shift them into the high half.
    /// </summary>
    private static void WidenBFloat16(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        Span<uint> dstBits = MemoryMarshal.Cast<float, uint>(dst);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int step = Vector<ushort>.Count;
            ReadOnlySpan<Vector<ushort>> vin = MemoryMarshal.Cast<ushort, Vector<ushort>>(src[..(src.Length / step * step)]);
            Span<Vector<uint>> vout = MemoryMarshal.Cast<uint, Vector<uint>>(dstBits);
            for (int v = 0; v < vin.Length; v++)
            {
                Vector.Widen(vin[v], out Vector<uint> lo, out Vector<uint> hi);
                vout[2 * v] = lo << 16;
                vout[2 * v + 1] = hi << 16;
            }
            i = vin.Length * step;
        }
        for (; i < src.Length; i++) dstBits[i] = (uint)src[i] << 16;
    }

    /// <summary>Converts raw little-endian I32/I64 bytes to long.</summary>
    public static void ConvertToInt64(DType dtype, ReadOnlySpan<byte> src, Span<long> dst)
    {
        switch (dtype)
        {
            case DType.Int64:
                if (BitConverter.IsLittleEndian)
                {
                    src.CopyTo(MemoryMarshal.AsBytes(dst));
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src.Slice(i * 8, 8));
                }
                break;
            case DType.Int32:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src.Slice(i * 4, 4));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not an integer dtype");
        }
    }
}
