using NativeReasoner.Kernels;

namespace NativeReasoner;

// Reductions over axes: sum, mean, max, min (with keepdim), and their gradients.
public unsafe partial class Tensor
{
    /// <summary>Sum over the given axes (all axes when none are given).</summary>
    public Tensor Sum(int[]? dims = null, bool keepDim = false) => ReduceAxes(ReduceOp.Sum, "sum", dims, keepDim);

    public Tensor Sum(int dim, bool keepDim = false) => Sum([dim], keepDim);

    /// <summary>Mean over the given axes (all axes when none are given).</summary>
    public Tensor Mean(int[]? dims = null, bool keepDim = false) => ReduceAxes(ReduceOp.Mean, "mean", dims, keepDim);

    public Tensor Mean(int dim, bool keepDim = false) => Mean([dim], keepDim);

    /// <summary>Maximum over one axis (values; the gradient goes to the first maximal element).</summary>
    public Tensor Max(int dim, bool keepDim = false) => ExtremeAlong(ReduceOp.Max, "max", dim, keepDim);

    /// <summary>Maximum of all elements (a 0-d tensor).</summary>
    public Tensor Max()
    {
        using var flat = Reshape(-1);
        return flat.Max(0);
    }

    /// <summary>Minimum over one axis (values; the gradient goes to the first minimal element).</summary>
    public Tensor Min(int dim, bool keepDim = false) => ExtremeAlong(ReduceOp.Min, "min", dim, keepDim);

    public Tensor Min()
    {
        using var flat = Reshape(-1);
        return flat.Min(0);
    }

    private Tensor ReduceAxes(ReduceOp op, string name, int[]? dims, bool keepDim)
    {
        RequireFloat(name);
        var axes = NormalizeAxes(dims, name);
        var keepShape = _shape.ToArray();
        long count = 1;
        foreach (var d in axes)
        {
            count *= _shape[d];
            keepShape[d] = 1;
        }
        var outShape = keepDim ? keepShape : _shape.Where((_, i) => !axes.Contains(i)).ToArray();

        // One kernel pass per axis, innermost first; [outer, dim, inner] views of a contiguous buffer.
        var current = ContiguousNoGrad();
        var curShape = _shape.ToArray();
        foreach (var d in axes.OrderByDescending(x => x))
        {
            var (outer, dim, inner) = Split3(curShape, d);
            curShape[d] = 1;
            var next = Empty(curShape, DType.Float32, Device);
            Device.Kernels.Reduce(ReduceOp.Sum, current.Data, next.Data, outer, dim, inner, null);
            current.Dispose();
            current = next;
        }
        if (op == ReduceOp.Mean && count > 0) Device.Kernels.Unary(UnaryOp.Scale, current.Data, current.Data, current.Numel, 1f / count);
        if (op == ReduceOp.Mean && count == 0) Device.Kernels.Fill(current.Data, current.Numel, float.NaN);
        Tensor result;
        using (current) result = current.MakeView(outShape, ContiguousStrides(outShape), current.Offset);
        var inShape = _shape.ToArray();
        float scale = op == ReduceOp.Mean ? 1f / Math.Max(count, 1) : 1f;
        return Record(result, name, [this], g =>
        {
            using var gk = g.ContiguousNoGrad();
            using var gkeep = gk.MakeView(keepShape, ContiguousStrides(keepShape), gk.Offset);
            using var e = gkeep.BroadcastViewNoGrad(inShape, name + " backward");
            var dx = e.ContiguousCopyNoGrad();
            if (scale != 1f) dx.Device.Kernels.Unary(UnaryOp.Scale, dx.Data, dx.Data, dx.Numel, scale);
            return [dx];
        });
    }

    private Tensor ExtremeAlong(ReduceOp op, string name, int dim, bool keepDim)
    {
        RequireFloat(name);
        int d = NormalizeDim(dim, Rank, name);
        if (Rank > 0 && _shape[d] == 0) throw new ArgumentException($"{name}: axis {d} of shape {FormatShape(Shape)} is empty");
        var keepShape = _shape.ToArray();
        if (Rank > 0) keepShape[d] = 1;
        var outShape = keepDim || Rank == 0 ? keepShape : _shape.Where((_, i) => i != d).ToArray();
        var (outer, size, inner) = Rank == 0 ? (1, 1, 1) : Split3(_shape, d);
        using var x = ContiguousNoGrad();
        var values = Empty(outShape, DType.Float32, Device);
        var argIndex = Empty(keepShape, DType.Int32, Device);
        Device.Kernels.Reduce(op, x.Data, values.Data, outer, size, inner, (int*)argIndex.RawPointer);
        if (!NeedsGrad(this))
        {
            argIndex.Dispose();
            return values;
        }
        var inShape = _shape.ToArray();
        var recorded = Record(values, name, [this], g =>
        {
            // Route each output gradient to the position that won: scatter-add along the axis.
            using var idx = argIndex.ToDTypeNoGrad(DType.Int64);
            using var gc = g.ContiguousNoGrad();
            var dx = Zeros(inShape, DType.Float32, g.Device);
            g.Device.Kernels.ScatterAdd(gc.Data, (long*)idx.RawPointer, dx.Data, outer, 1, size, inner);
            return [dx];
        }, argIndex);
        argIndex.Dispose();
        return recorded;
    }

    private int[] NormalizeAxes(int[]? dims, string op)
    {
        if (dims == null || dims.Length == 0) return Enumerable.Range(0, Rank).ToArray();
        var result = new List<int>();
        foreach (var dim in dims)
        {
            int d = NormalizeDim(dim, Rank, op);
            if (result.Contains(d)) throw new ArgumentException($"{op}: axis {d} repeated");
            result.Add(d);
        }
        return result.ToArray();
    }

    /// <summary>Splits a shape around axis d into (product before, size of d, product after).</summary>
    internal static (int outer, int dim, int inner) Split3(ReadOnlySpan<int> shape, int d)
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < d; i++) outer *= shape[i];
        for (int i = d + 1; i < shape.Length; i++) inner *= shape[i];
        return (checked((int)outer), shape[d], checked((int)inner));
    }
}
