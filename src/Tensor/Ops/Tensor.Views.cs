using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner;

// Views: new shapes and strides over the same memory, no copy. Each records how to carry the gradient back.
public unsafe partial class Tensor
{
    private Tensor MakeView(int[] shape, long[] strides, long offset) =>
        new(Buffer.RetainSelf(), Device, DType, shape, strides, offset);

    /// <summary>
    /// Same elements in a new shape (one dimension may be −1). A view when the layout allows it
    /// (contiguous), otherwise a contiguous copy.
    /// </summary>
    public Tensor Reshape(params int[] shape)
    {
        var target = InferShape(shape, Numel, "reshape", Shape);
        Tensor result;
        if (IsContiguous) result = MakeView(target, ContiguousStrides(target), Offset);
        else
        {
            using var c = ContiguousNoGrad();
            result = c.MakeView(target, ContiguousStrides(target), c.Offset);
        }
        var inShape = _shape.ToArray();
        return Record(result, "reshape", [this], g => [g.Reshape(inShape)]);
    }

    /// <summary>Like <see cref="Reshape"/> but never copies: a non-contiguous tensor is an error.</summary>
    public Tensor View(params int[] shape)
    {
        if (!IsContiguous)
            throw new InvalidOperationException($"view: tensor{NameSuffix} of shape {FormatShape(Shape)} is not contiguous; use Reshape or Contiguous()");
        return Reshape(shape);
    }

    /// <summary>All dimensions merged into one.</summary>
    public Tensor Flatten() => Reshape(-1);

    private static int[] InferShape(int[] shape, long numel, string op, ReadOnlySpan<int> from)
    {
        var result = shape.ToArray();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < result.Length; i++)
        {
            if (result[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"{op}: only one dimension can be -1 in {FormatShape(shape)}");
                infer = i;
            }
            else if (result[i] < 0) throw new ArgumentException($"{op}: negative dimension in {FormatShape(shape)}");
            else known *= result[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || numel % known != 0)
                throw new ArgumentException($"{op}: cannot reshape {FormatShape(from)} ({numel} elements) to {FormatShape(shape)}");
            result[infer] = (int)(numel / known);
        }
        else if (known != numel)
            throw new ArgumentException($"{op}: cannot reshape {FormatShape(from)} ({numel} elements) to {FormatShape(shape)} ({known} elements)");
        return result;
    }

    /// <summary>Reorders the axes: result axis i is input axis dims[i].</summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank)
            throw new ArgumentException($"permute: {dims.Length} axes given for a tensor of rank {Rank} (shape {FormatShape(Shape)})");
        var seen = new bool[Rank];
        var shape = new int[Rank];
        var strides = new long[Rank];
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = NormalizeDim(dims[i], Rank, "permute");
            if (seen[d]) throw new ArgumentException($"permute: axis {d} repeated in [{string.Join(", ", dims)}]");
            seen[d] = true;
            shape[i] = _shape[d];
            strides[i] = _strides[d];
            inverse[d] = i;
        }
        return Record(MakeView(shape, strides, Offset), "permute", [this], g => [g.Permute(inverse)]);
    }

    /// <summary>Swaps two axes.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        int a = NormalizeDim(dim0, Rank, "transpose"), b = NormalizeDim(dim1, Rank, "transpose");
        var perm = Enumerable.Range(0, Rank).ToArray();
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(perm);
    }

    /// <summary>The transpose of a matrix (the last two axes of a batch).</summary>
    public Tensor T() => Rank < 2
        ? throw new InvalidOperationException($"T(): needs rank ≥ 2, tensor{NameSuffix} has shape {FormatShape(Shape)}")
        : Transpose(-2, -1);

    /// <summary>Elements start..start+length−1 of axis dim.</summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        int d = NormalizeDim(dim, Rank, "narrow");
        if (start < 0) start += _shape[d];
        if (start < 0 || length < 0 || start + (long)length > _shape[d])
            throw new ArgumentOutOfRangeException(nameof(start), $"narrow: range [{start}, {start + length}) is outside axis {d} of size {_shape[d]} (shape {FormatShape(Shape)})");
        var shape = _shape.ToArray();
        shape[d] = length;
        var inShape = _shape.ToArray();
        var view = MakeView(shape, _strides.ToArray(), Offset + start * _strides[d]);
        return Record(view, "narrow", [this], g =>
        {
            var full = Zeros(inShape, DType.Float32, g.Device);
            using var window = full.Narrow(d, start, length);
            window.CopyFrom_(g);
            return [full];
        });
    }

    /// <summary>Python-style slice start:end:step along one axis (negative start/end count from the end).</summary>
    public Tensor Slice(int dim, int start, int end, int step = 1)
    {
        int d = NormalizeDim(dim, Rank, "slice");
        if (step <= 0) throw new ArgumentOutOfRangeException(nameof(step), "slice: step must be positive");
        int n = _shape[d];
        if (start < 0) start += n;
        if (end < 0) end += n;
        start = Math.Clamp(start, 0, n);
        end = Math.Clamp(end, start, n);
        if (step == 1) return Narrow(d, start, end - start);
        int len = (end - start + step - 1) / step;
        var shape = _shape.ToArray();
        var strides = _strides.ToArray();
        shape[d] = len;
        strides[d] *= step;
        var inShape = _shape.ToArray();
        var view = MakeView(shape, strides, Offset + start * _strides[d]);
        return Record(view, "slice", [this], g =>
        {
            var full = Zeros(inShape, DType.Float32, g.Device);
            using var window = full.Slice(d, start, end, step);
            window.CopyFrom_(g);
            return [full];
        });
    }

    /// <summary>Inserts an axis of size 1 at dim.</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = dim < 0 ? dim + Rank + 1 : dim;
        if (d < 0 || d > Rank) throw new ArgumentOutOfRangeException(nameof(dim), $"unsqueeze: dimension {dim} out of range for rank {Rank}");
        var shape = _shape.ToList();
        var strides = _strides.ToList();
        shape.Insert(d, 1);
        strides.Insert(d, d < Rank ? _strides[d] * _shape[d] : 1);
        return Record(MakeView(shape.ToArray(), strides.ToArray(), Offset), "unsqueeze", [this], g => [g.Squeeze(d)]);
    }

    /// <summary>Removes axis dim if its size is 1 (or every size-1 axis when dim is null).</summary>
    public Tensor Squeeze(int? dim = null)
    {
        var keep = new List<int>();
        int? only = dim.HasValue ? NormalizeDim(dim.Value, Rank, "squeeze") : null;
        for (int i = 0; i < Rank; i++)
            if (_shape[i] != 1 || (only.HasValue && only.Value != i)) keep.Add(i);
        var shape = keep.Select(i => _shape[i]).ToArray();
        var strides = keep.Select(i => _strides[i]).ToArray();
        var inShape = _shape.ToArray();
        return Record(MakeView(shape, strides, Offset), "squeeze", [this], g => [g.Reshape(inShape)]);
    }

    /// <summary>Broadcasts size-1 axes (and new leading axes) to a larger shape without copying (stride 0).</summary>
    public Tensor Expand(params int[] shape)
    {
        if (shape.Length < Rank)
            throw new ArgumentException($"expand: cannot expand {FormatShape(Shape)} to fewer dimensions {FormatShape(shape)}");
        var strides = new long[shape.Length];
        var target = shape.ToArray();
        int lead = shape.Length - Rank;
        for (int i = 0; i < shape.Length; i++)
        {
            if (i < lead)
            {
                if (target[i] < 0) throw new ArgumentException($"expand: new leading dimension cannot be -1 in {FormatShape(shape)}");
                strides[i] = 0;
                continue;
            }
            int src = _shape[i - lead];
            if (target[i] == -1) target[i] = src;
            if (src == target[i]) strides[i] = _strides[i - lead];
            else if (src == 1) strides[i] = 0;
            else throw new ArgumentException($"expand: cannot expand {FormatShape(Shape)} to {FormatShape(shape)} (axis {i}: {src} vs {target[i]})");
        }
        var inShape = _shape.ToArray();
        return Record(MakeView(target, strides, Offset), "expand", [this], g => [g.SumToShape(inShape)]);
    }

    /// <summary>A contiguous tensor with the same values: a new view when already contiguous, else a copy.</summary>
    public Tensor Contiguous()
    {
        var result = ContiguousNoGrad();
        return Record(result, "contiguous", [this], g => [g.Alias()]);
    }

    /// <summary>Contiguous without recording: a view when already contiguous, otherwise a copy.</summary>
    internal Tensor ContiguousNoGrad()
    {
        if (IsContiguous) return MakeView(_shape.ToArray(), ContiguousStrides(_shape), Offset);
        return ContiguousCopyNoGrad();
    }

    /// <summary>Always a fresh contiguous copy, without recording.</summary>
    internal Tensor ContiguousCopyNoGrad()
    {
        var result = Empty(Shape, DType, Device);
        Device.Kernels.StridedCopy(RawPointer, Strides, result.RawPointer, result.Strides, Shape, DType.SizeOf());
        return result;
    }

    /// <summary>A copy of this tensor with its own memory (records the graph: clone's grad is the identity).</summary>
    public Tensor Clone() => Record(ContiguousCopyNoGrad(), "clone", [this], g => [g.Alias()]);

    /// <summary>Copies src (broadcast to this shape, same dtype) into this tensor in place. Never recorded.</summary>
    public Tensor CopyFrom_(Tensor src)
    {
        CheckInPlace("copy_");
        SameDevice(src, "copy_");
        if (src.DType != DType) throw new ArgumentException($"copy_: dtype {src.DType} into {DType}; convert with To() first");
        using var b = src.BroadcastViewNoGrad(Shape, "copy_");
        Device.Kernels.StridedCopy(b.RawPointer, b.Strides, RawPointer, Strides, Shape, DType.SizeOf());
        return this;
    }

    /// <summary>A stride-0 view of this tensor broadcast to shape (no recording).</summary>
    internal Tensor BroadcastViewNoGrad(ReadOnlySpan<int> shape, string op)
    {
        var target = shape.ToArray();
        if (target.Length < Rank) throw new ArgumentException($"{op}: cannot broadcast {FormatShape(Shape)} to {FormatShape(shape)}");
        var strides = new long[target.Length];
        int lead = target.Length - Rank;
        for (int i = lead; i < target.Length; i++)
        {
            int src = _shape[i - lead];
            if (src == target[i]) strides[i] = _strides[i - lead];
            else if (src == 1) strides[i] = 0;
            else throw new ArgumentException($"{op}: shapes {FormatShape(Shape)} and {FormatShape(shape)} do not broadcast (axis {i})");
        }
        return MakeView(target, strides, Offset);
    }

    private void CheckInPlace(string op)
    {
        if (Autograd.GradMode.IsEnabled && RequiresGrad)
            throw new InvalidOperationException($"{op}: in-place change of tensor{NameSuffix} that requires grad; wrap it in Tensor.NoGrad()");
    }

    internal void SameDevice(Tensor other, string op)
    {
        if (!other.Device.Equals(Device))
            throw new ArgumentException($"{op}: tensors on different devices ({Device} and {other.Device})");
    }

    /// <summary>Throws unless this tensor has exactly the given shape.</summary>
    public Tensor Expect(ReadOnlySpan<int> shape, string what)
    {
        if (!Shape.SequenceEqual(shape))
            throw new ArgumentException($"{what}: expected shape {FormatShape(shape)}, got {FormatShape(Shape)}");
        return this;
    }

    // ------------------------------------------------------------------ dtype and device

    /// <summary>Converts to another dtype (a new tensor; float32 ↔ bf16/f16, int ↔ int, int ↔ float32).</summary>
    public Tensor To(DType dtype)
    {
        var result = ToDTypeNoGrad(dtype);
        if (dtype == DType.Float32 && DType == DType.Float32)
            return Record(result, "to", [this], g => [g.Alias()]);
        return result;
    }

    internal Tensor ToDTypeNoGrad(DType dtype)
    {
        // Packed rows are not elements: a packed weight widens through its block format's decoder, and nothing
        // converts into a block format here (Tensor.Pack quantises a weight row by row).
        if (dtype == DType.Packed)
            throw new NotSupportedException(
                $"tensor{NameSuffix}: converting to {DType.Packed} is not an element conversion; pack a weight instead");
        if (DType == DType.Packed)
        {
            var wide = DequantizePackedNoGrad();
            if (dtype == DType.Float32) return wide;
            using (wide) return wide.ToDTypeNoGrad(dtype);
        }
        using var src = ContiguousNoGrad();
        if (dtype == DType) return src.ContiguousCopyNoGrad();
        var k = Device.Kernels;
        var dst = Empty(Shape, dtype, Device);
        long n = Numel;
        byte* s = src.RawPointer, d = dst.RawPointer;
        switch (DType, dtype)
        {
            case (DType.Float32, DType.BFloat16): k.FloatToBFloat16((float*)s, (ushort*)d, n); break;
            case (DType.Float32, DType.Float16): k.FloatToHalf((float*)s, (ushort*)d, n); break;
            case (DType.BFloat16, DType.Float32): k.BFloat16ToFloat((ushort*)s, (float*)d, n); break;
            case (DType.Float16, DType.Float32): k.HalfToFloat((ushort*)s, (float*)d, n); break;
            case (DType.Int64, DType.Float32): k.Int64ToFloat((long*)s, (float*)d, n); break;
            case (DType.Float32, DType.Int64): k.FloatToInt64((float*)s, (long*)d, n); break;
            case (DType.Int32, DType.Int64): k.Int32ToInt64((int*)s, (long*)d, n); break;
            case (DType.Int64, DType.Int32): k.Int64ToInt32((long*)s, (int*)d, n); break;
            default:
                // The remaining pairs go through a hub type: float32 for floats, int64 for integers.
                dst.Dispose();
                DType hub = DType.IsFloating() ? DType.Float32 : DType.Int64;
                if (hub == DType) hub = dtype.IsFloating() ? DType.Float32 : DType.Int64;
                using (var mid = src.ToDTypeNoGrad(hub))
                    return mid.ToDTypeNoGrad(dtype);
        }
        return dst;
    }

    /// <summary>Copies to another device (a new tensor; the graph is kept for float32).</summary>
    public Tensor To(Device device)
    {
        if (PackedFormat is { } packed)
            throw new InvalidOperationException($"tensor{NameSuffix} is a packed {packed.Name()} weight: load the " +
                "checkpoint onto the device instead of moving it");
        using var src = ContiguousNoGrad();
        var dst = Empty(Shape, DType, device);
        long bytes = Numel * DType.SizeOf();
        if (bytes > 0)
        {
            if (Device.IsHost) device.Memory.CopyFromHost(src.RawPointer, dst.RawPointer, bytes);
            else if (device.IsHost) Device.Memory.CopyToHost(src.RawPointer, dst.RawPointer, bytes);
            else if (ReferenceEquals(device.Memory, Device.Memory)) device.Memory.Copy(src.RawPointer, dst.RawPointer, bytes);
            else
            {
                // Two device memories: stage through the host.
                var staging = new byte[bytes];
                fixed (byte* h = staging)
                {
                    Device.Memory.CopyToHost(src.RawPointer, h, bytes);
                    device.Memory.CopyFromHost(h, dst.RawPointer, bytes);
                }
            }
        }
        var from = Device;
        if (DType != DType.Float32) return dst;
        return Record(dst, "to_device", [this], g => [g.To(from)]);
    }
}
