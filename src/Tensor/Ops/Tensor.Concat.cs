using NativeReasoner.Kernels;

namespace NativeReasoner;

// Joining and splitting along an axis: cat, stack, split, chunk.
public unsafe partial class Tensor
{
    /// <summary>
    /// Concatenates tensors along <paramref name="dim"/>: all have the same rank, dtype and device, and the
    /// same sizes on every other axis. Each input is copied (strided) into its window of the output.
    /// </summary>
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int dim)
    {
        const string op = "cat";
        if (tensors.Count == 0) throw new ArgumentException($"{op}: needs at least one tensor");
        var first = tensors[0];
        if (first.Rank == 0) throw new ArgumentException($"{op}: 0-d tensors cannot be concatenated (use Stack)");
        int d = NormalizeDim(dim, first.Rank, op);
        for (int t = 1; t < tensors.Count; t++)
        {
            var x = tensors[t];
            bool ok = x.Rank == first.Rank;
            for (int i = 0; ok && i < first.Rank; i++)
                if (i != d && x._shape[i] != first._shape[i]) ok = false;
            if (!ok)
                throw new ArgumentException(
                    $"{op}: tensor {t} of shape {FormatShape(x.Shape)} does not match tensor 0 of shape {FormatShape(first.Shape)} outside axis {d}");
        }
        return CatCore(tensors, tensors, d, op);
    }

    /// <summary>
    /// Stacks tensors of one shape along a new axis <paramref name="dim"/> (in [−(rank+1), rank]): each is
    /// unsqueezed there, then they are concatenated.
    /// </summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim)
    {
        const string op = "stack";
        if (tensors.Count == 0) throw new ArgumentException($"{op}: needs at least one tensor");
        var first = tensors[0];
        int rank = first.Rank;
        int d = dim < 0 ? dim + rank + 1 : dim;
        if (d < 0 || d > rank)
            throw new ArgumentOutOfRangeException(nameof(dim), $"{op}: dimension {dim} is out of range for stacking tensors of rank {rank}");
        for (int t = 1; t < tensors.Count; t++)
            if (!tensors[t].Shape.SequenceEqual(first.Shape))
                throw new ArgumentException(
                    $"{op}: tensor {t} of shape {FormatShape(tensors[t].Shape)} differs from tensor 0 of shape {FormatShape(first.Shape)}");
        // Unsqueezed views that are not recorded: the one cat node below records the original tensors,
        // so the views can be disposed here without cutting the graph.
        var views = new Tensor[tensors.Count];
        try
        {
            for (int t = 0; t < views.Length; t++)
            {
                var x = tensors[t];
                var shape = x._shape.ToList();
                var strides = x._strides.ToList();
                shape.Insert(d, 1);
                strides.Insert(d, 1);
                views[t] = x.MakeView(shape.ToArray(), strides.ToArray(), x.Offset);
            }
            return CatCore(views, tensors, d, op);
        }
        finally
        {
            foreach (var v in views) v?.Dispose();
        }
    }

    /// <summary>
    /// Copies parts (already validated, same rank) into the windows of one output along axis d and records
    /// one node whose inputs are <paramref name="inputs"/> (the parts themselves, or the tensors the parts
    /// are unrecorded views of, element for element).
    /// </summary>
    private static Tensor CatCore(IReadOnlyList<Tensor> parts, IReadOnlyList<Tensor> inputs, int d, string op)
    {
        var first = parts[0];
        var outShape = first._shape.ToArray();
        long total = 0;
        foreach (var p in parts)
        {
            if (p.DType != first.DType)
                throw new ArgumentException($"{op}: dtypes differ ({first.DType} and {p.DType}); convert with To() first");
            first.SameDevice(p, op);
            total += p._shape[d];
        }
        outShape[d] = checked((int)total);
        var result = Empty(outShape, first.DType, first.Device);
        var starts = new int[parts.Count];
        int offset = 0;
        for (int t = 0; t < parts.Count; t++)
        {
            var p = parts[t];
            starts[t] = offset;
            int len = p._shape[d];
            if (p.Numel > 0)
            {
                using var window = result.NarrowNoGrad(d, offset, len);
                result.Device.Kernels.StridedCopy(p.RawPointer, p.Strides, window.RawPointer, window.Strides, p.Shape, p.DType.SizeOf());
            }
            offset += len;
        }
        bool any = false;
        foreach (var x in inputs) any |= NeedsGrad(x);
        if (!any) return result;

        var inputArray = inputs.ToArray();
        var lengths = parts.Select(p => p._shape[d]).ToArray();
        var inShapes = inputArray.Select(x => x._shape.ToArray()).ToArray();
        return Record(result, op, inputArray, g =>
        {
            // Each input's gradient is its window of g, copied out (and reshaped back for stack).
            var grads = new Tensor?[inputArray.Length];
            for (int t = 0; t < inputArray.Length; t++)
            {
                if (!inputArray[t].RequiresGrad) continue;
                using var window = g.NarrowNoGrad(d, starts[t], lengths[t]);
                using var copy = window.ContiguousCopyNoGrad();
                grads[t] = copy.ReshapeNoGrad(inShapes[t]);
            }
            return grads;
        });
    }

    /// <summary>
    /// Splits axis <paramref name="dim"/> into consecutive parts of the given sizes (which must sum to the
    /// axis size). Each part is a Narrow view of this tensor.
    /// </summary>
    public Tensor[] Split(int[] sizes, int dim)
    {
        const string op = "split";
        if (Rank == 0) throw new ArgumentException($"{op}: cannot split a 0-d tensor");
        int d = NormalizeDim(dim, Rank, op);
        long sum = 0;
        foreach (var s in sizes)
        {
            if (s < 0) throw new ArgumentException($"{op}: negative size in [{string.Join(", ", sizes)}]");
            sum += s;
        }
        if (sum != _shape[d])
            throw new ArgumentException(
                $"{op}: sizes [{string.Join(", ", sizes)}] sum to {sum}, axis {d} of shape {FormatShape(Shape)} has {_shape[d]}");
        var parts = new Tensor[sizes.Length];
        int start = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            parts[i] = Narrow(d, start, sizes[i]);
            start += sizes[i];
        }
        return parts;
    }

    /// <summary>
    /// Splits axis <paramref name="dim"/> into parts of ceil(size / chunks) elements, the last one smaller
    /// (torch.chunk: fewer than <paramref name="chunks"/> parts when the size does not allow more; an
    /// empty axis gives <paramref name="chunks"/> empty parts).
    /// </summary>
    public Tensor[] Chunk(int chunks, int dim)
    {
        const string op = "chunk";
        if (chunks < 1) throw new ArgumentOutOfRangeException(nameof(chunks), $"{op}: chunks must be ≥ 1, got {chunks}");
        if (Rank == 0) throw new ArgumentException($"{op}: cannot chunk a 0-d tensor");
        int d = NormalizeDim(dim, Rank, op);
        int n = _shape[d];
        if (n == 0) return Split(new int[chunks], d);
        int step = (int)((n + (long)chunks - 1) / chunks);
        var sizes = new List<int>();
        for (int start = 0; start < n; start += step) sizes.Add(Math.Min(step, n - start));
        return Split(sizes.ToArray(), d);
    }
}
