using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Fallback;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner;

// Weight matrices packed in a block format (bf16, Q8_0, Q4_0, Q4_K, Q6_K) for inference: the tensor keeps its
// logical shape [N, K] while its memory holds N packed rows; Tensor.Linear multiplies with it directly.
public unsafe partial class Tensor
{
    /// <summary>The block format of a packed weight (<see cref="DType.Packed"/>), else null.</summary>
    public QuantFormat? PackedFormat { get; private set; }

    /// <summary>Bytes of this tensor's elements as stored: N packed rows for a packed weight, else Numel × element
    /// size.</summary>
    public long StorageBytes => PackedFormat is { } f ? _shape[0] * f.RowBytes(_shape[1]) : Numel * DType.SizeOf();

    /// <summary>
    /// Replaces this [N, K] leaf's memory with its rows packed in <paramref name="format"/> (quantised row by row
    /// from the current values when <paramref name="keepValues"/>; a row at a time, so no second full copy) and
    /// stops it requiring gradients.
    /// </summary>
    private protected void ReplaceStoragePacked(QuantFormat format, bool keepValues)
    {
        if (Rank != 2)
            throw new ArgumentException(
                $"tensor{NameSuffix}: only a weight matrix [N, K] can be packed, got {FormatShape(Shape)}");
        if (!DType.IsFloating())
            throw new ArgumentException(
                $"tensor{NameSuffix}: a {DType} tensor cannot be packed (float32, bf16 or f16 expected)");
        if (!IsLeaf || Grad != null || !IsContiguous || Offset != 0)
            throw new InvalidOperationException(
                $"tensor{NameSuffix}: only a contiguous leaf at offset 0 without a gradient can be packed");
        int n = _shape[0], k = _shape[1];
        if (k % format.BlockSize() != 0)
            throw new ArgumentException(
                $"tensor{NameSuffix} {FormatShape(Shape)}: {format.Name()} needs K (here {k}) to be a multiple of " +
                $"{format.BlockSize()}");
        if (keepValues && !format.CanQuantize())
            throw new NotSupportedException($"{format.Name()} is decode-only: weights cannot be quantised to it");
        long rowBytes = format.RowBytes(k), bytes = n * rowBytes;
        var replacement = Device.Memory is HostMemory ? NativeBuffer.AllocateUnpooled(Math.Max(1, bytes))
            : Device.Allocate(Math.Max(1, bytes));
        try
        {
            if (keepValues)
            {
                int size = DType.SizeOf();
                var raw = new byte[(long)k * size];
                var row = new float[k];
                var packed = new byte[rowBytes];
                for (int r = 0; r < n; r++)
                {
                    fixed (byte* pr = raw) Device.Memory.CopyToHost(RawPointer + (long)r * k * size, pr, raw.Length);
                    Widen(DType, raw, row);
                    BlockQuantizer.QuantizeRow(format, row, packed);
                    fixed (byte* pp = packed) Device.Memory.CopyFromHost(pp, replacement.Pointer + r * rowBytes,
                        rowBytes);
                }
            }
        }
        catch
        {
            replacement.Release();
            throw;
        }
        _buffer!.Release();
        _buffer = replacement;
        DType = DType.Packed;
        PackedFormat = format;
        RequiresGrad = false;
    }

    /// <summary>A packed weight decoded to a new float32 [N, K] tensor on the same device, a row at a time
    /// (the values the reference backend multiplies with).</summary>
    private Tensor DequantizePackedNoGrad()
    {
        var format = PackedFormat!.Value;
        int n = _shape[0], k = _shape[1];
        long rowBytes = format.RowBytes(k);
        var dst = Empty([n, k], DType.Float32, Device);
        var packed = new byte[rowBytes];
        var row = new float[k];
        for (int r = 0; r < n; r++)
        {
            fixed (byte* pp = packed) Device.Memory.CopyToHost(RawPointer + r * rowBytes, pp, rowBytes);
            BlockQuantizer.DequantizeRow(format, packed, row);
            fixed (float* py = row) Device.Memory.CopyFromHost((byte*)py, dst.RawPointer + (long)r * k * 4, (long)k * 4);
        }
        return dst;
    }

    private static void Widen(DType dtype, ReadOnlySpan<byte> raw, Span<float> row)
    {
        for (int i = 0; i < row.Length; i++)
            row[i] = dtype switch
            {
                DType.Float32 => BitConverter.ToSingle(raw.Slice(4 * i, 4)),
                DType.BFloat16 => BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(raw.Slice(2 * i,
                    2)) << 16),
                _ => (float)BitConverter.ToHalf(raw.Slice(2 * i, 2)),
            };
    }

    /// <summary>
    /// x [..., K] · Wᵀ (+ bias) with W a packed [N, K] weight (or a contiguous bf16 one, whose memory is the packed bf16
    /// layout: <paramref name="format"/> says which): one <see cref="IQuantizedMatMul"/> call over all rows of x (the
    /// backend's own kernel, or the host fallback). Inference only: no gradient flows through a packed weight.
    /// </summary>
    private static Tensor LinearPacked(Tensor x, Tensor weight, QuantFormat format, Tensor? bias)
    {
        int n = weight._shape[0], k = weight._shape[1];
        if (NeedsGrad(x))
            throw new InvalidOperationException(
                $"linear: weight{weight.NameSuffix} is packed {format.Name()} for inference: no gradient flows " +
                "through it (load the float32 weights to train)");
        if (x.DType != DType.Float32)
            throw new ArgumentException($"linear: input must be float32 with a packed weight, got {x.DType}");
        x.SameDevice(weight, "linear");
        var outShape = x._shape.ToArray();
        outShape[^1] = n;
        var y = Empty(outShape, DType.Float32, x.Device);
        long rows = x.Numel / Math.Max(1, k);
        if (rows > int.MaxValue) throw new ArgumentException($"linear: {rows} rows is more than one product can take");
        using (var xc = x.ContiguousNoGrad())
            KernelFallback.QuantizedMatMul(x.Device.Kernels, x.Device.Memory)
                .QuantizedMatMul(format, (int)rows, n, k, xc.Data, weight.RawPointer, y.Data);
        if (bias == null) return y;
        if (bias.Rank != 1 || bias._shape[0] != n)
        {
            y.Dispose();
            throw new ArgumentException($"linear: bias must be [{n}], got {FormatShape(bias.Shape)}");
        }
        using (y) return y.Add(bias);
    }
}
