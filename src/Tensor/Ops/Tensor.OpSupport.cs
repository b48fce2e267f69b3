using NativeReasoner.Kernels;

namespace NativeReasoner;

// Helpers shared by the composite ops (softmax, indexing, concatenation, Functional): views that are
// never recorded, index-tensor normalisation and range checks. A composite op does its view juggling
// with these and records ONE graph node for the whole op: no per-view nodes to walk in the backward,
// and the layout changes of the backward are done in place of the forward's inverse views.
public unsafe partial class Tensor
{
    /// <summary>A view with axes a and b swapped, not recorded.</summary>
    internal Tensor TransposeNoGrad(int a, int b)
    {
        var shape = _shape.ToArray();
        var strides = _strides.ToArray();
        (shape[a], shape[b]) = (shape[b], shape[a]);
        (strides[a], strides[b]) = (strides[b], strides[a]);
        return MakeView(shape, strides, Offset);
    }

    /// <summary>Elements start..start+length−1 of axis d (already normalised and checked), not recorded.</summary>
    internal Tensor NarrowNoGrad(int d, int start, int length)
    {
        var shape = _shape.ToArray();
        shape[d] = length;
        return MakeView(shape, _strides.ToArray(), Offset + start * _strides[d]);
    }

    /// <summary>
    /// The same elements in a new shape with the same element count, not recorded: a view when this
    /// tensor is contiguous, otherwise a contiguous copy.
    /// </summary>
    internal Tensor ReshapeNoGrad(ReadOnlySpan<int> shape)
    {
        var target = shape.ToArray();
        using var c = ContiguousNoGrad();
        return c.MakeView(target, ContiguousStrides(target), c.Offset);
    }

    /// <summary>
    /// An index tensor as contiguous int64 (int32 is converted): what the indexing kernels read.
    /// Anything else is an error naming the op.
    /// </summary>
    internal Tensor IndexAsInt64(string op, string what)
    {
        return DType switch
        {
            DType.Int64 => ContiguousNoGrad(),
            DType.Int32 => ToDTypeNoGrad(DType.Int64),
            _ => throw new ArgumentException($"{op}: {what} must be int64 (or int32), got {DType} of shape {FormatShape(Shape)}"),
        };
    }

    /// <summary>
    /// Throws ArgumentOutOfRangeException unless every element of the contiguous int64 tensor idx lies in
    /// [0, bound). The message names the op, the position as an index tuple, the value and the bound,
    /// followed by <paramref name="context"/>. Reads the ids on the host (a copy for device memory).
    /// </summary>
    internal static void CheckIndexRange(Tensor idx, long bound, string op, string what, string context)
    {
        ReadOnlySpan<long> p = idx.Device.IsHost
            ? new ReadOnlySpan<long>(idx.RawPointer, checked((int)idx.Numel))
            : idx.ToInt64Array();
        for (int i = 0; i < p.Length; i++)
        {
            long v = p[i];
            if ((ulong)v >= (ulong)bound)
                throw new ArgumentOutOfRangeException(what,
                    $"{op}: {what} {v} at position {FormatPosition(i, idx.Shape)} is outside [0, {bound}){context}");
        }
    }

    /// <summary>The row-major index tuple "(i, j, k)" of flat element i in a tensor of the given shape.</summary>
    internal static string FormatPosition(long flat, ReadOnlySpan<int> shape)
    {
        var parts = new long[shape.Length];
        for (int a = shape.Length - 1; a >= 0; a--)
        {
            int n = Math.Max(shape[a], 1);
            parts[a] = flat % n;
            flat /= n;
        }
        return "(" + string.Join(", ", parts) + ")";
    }

    /// <summary>
    /// (product of axes before d, size of d, product after d), treating a 0-d tensor as [1] so that
    /// axis 0 of a scalar is a valid one-element axis (as in PyTorch).
    /// </summary>
    internal static (int outer, int dim, int inner) Split3OrScalar(ReadOnlySpan<int> shape, int d) =>
        shape.Length == 0 ? (1, 1, 1) : Split3(shape, d);
}
