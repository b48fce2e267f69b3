using NativeReasoner.Kernels;

namespace NativeReasoner;

// Index-driven ops along one axis: gather, index_select, scatter_add. Every op sees its operands as
// [outer, dim, inner] around the indexed axis; indices are int64 (int32 accepted), range-checked on the
// way in so the kernels never read or write out of bounds.
public unsafe partial class Tensor
{
    /// <summary>
    /// y[o, j, i] = x[o, index[o, j, i], i] along <paramref name="dim"/> (torch.gather). index has the rank
    /// of x and the sizes of x on every axis except dim; the result has index's shape.
    /// </summary>
    public Tensor Gather(int dim, Tensor index)
    {
        const string op = "gather";
        RequireFloat(op);
        SameDevice(index, op);
        int d = NormalizeDim(dim, Rank, op);
        CheckSameExceptAxis(index, d, op, "index");
        // x: [outer, dimIn, inner]; idx, y: [outer, dimOut, inner]
        var (outer, dimIn, inner) = Split3OrScalar(Shape, d);
        int dimOut = Rank == 0 ? 1 : index._shape[d];
        var idx = index.IndexAsInt64(op, "index");
        try { CheckIndexRange(idx, dimIn, op, "index", $" (axis {d} of input {FormatShape(Shape)})"); }
        catch { idx.Dispose(); throw; }
        var y = Empty(index.Shape, DType.Float32, Device);
        using (var xc = ContiguousNoGrad())
            if (y.Numel > 0) Device.Kernels.Gather(xc.Data, (long*)idx.RawPointer, y.Data, outer, dimIn, dimOut, inner);
        if (!NeedsGrad(this))
        {
            idx.Dispose();
            return y;
        }
        var inShape = _shape.ToArray();
        var result = Record(y, op, [this], g =>
        {
            // Each output element came from one input element: add it back there.
            using var gc = g.ContiguousNoGrad();
            var dx = Zeros(inShape, DType.Float32, g.Device);
            if (gc.Numel > 0) g.Device.Kernels.ScatterAdd(gc.Data, (long*)idx.RawPointer, dx.Data, outer, dimOut, dimIn, inner);
            return [dx];
        }, idx);
        idx.Dispose(); // freed when the node that saved it is released
        return result;
    }

    /// <summary>
    /// The slices index[0], index[1], ... of axis <paramref name="dim"/> (torch.index_select): index is 1-D
    /// of length n and the result has this shape with axis dim of size n.
    /// </summary>
    public Tensor IndexSelect(int dim, Tensor index)
    {
        const string op = "index_select";
        RequireFloat(op);
        SameDevice(index, op);
        if (Rank == 0) throw new ArgumentException($"{op}: needs a tensor of rank ≥ 1, got a 0-d tensor");
        int d = NormalizeDim(dim, Rank, op);
        if (index.Rank != 1)
            throw new ArgumentException($"{op}: index must be 1-D, got shape {FormatShape(index.Shape)}");
        // x: [outer, dimIn, inner]; idx: [n]; y: [outer, n, inner]
        var (outer, dimIn, inner) = Split3(Shape, d);
        int n = index._shape[0];
        var idx = index.IndexAsInt64(op, "index");
        try { CheckIndexRange(idx, dimIn, op, "index", $" (axis {d} of input {FormatShape(Shape)})"); }
        catch { idx.Dispose(); throw; }
        var outShape = _shape.ToArray();
        outShape[d] = n;
        var y = Empty(outShape, DType.Float32, Device);
        using (var xc = ContiguousNoGrad())
            if (y.Numel > 0) Device.Kernels.IndexSelect(xc.Data, (long*)idx.RawPointer, y.Data, outer, dimIn, n, inner);
        if (!NeedsGrad(this))
        {
            idx.Dispose();
            return y;
        }
        var inShape = _shape.ToArray();
        var result = Record(y, op, [this], g =>
        {
            // Repeated indices select the same slice several times: their gradients add up.
            using var gc = g.ContiguousNoGrad();
            var dx = Zeros(inShape, DType.Float32, g.Device);
            if (gc.Numel > 0) g.Device.Kernels.IndexAdd(gc.Data, (long*)idx.RawPointer, dx.Data, outer, n, dimIn, inner);
            return [dx];
        }, idx);
        idx.Dispose(); // freed when the node that saved it is released
        return result;
    }

    /// <summary>
    /// Out-of-place torch.Tensor.scatter_add: a copy of this tensor with out[o, index[o, j, i], i] +=
    /// src[o, j, i] along <paramref name="dim"/>. index and src have the same shape, equal to this shape on
    /// every axis except dim.
    /// </summary>
    public Tensor ScatterAdd(int dim, Tensor index, Tensor src)
    {
        const string op = "scatter_add";
        RequireFloat(op);
        src.RequireFloat(op);
        SameDevice(index, op);
        SameDevice(src, op);
        int d = NormalizeDim(dim, Rank, op);
        CheckSameExceptAxis(index, d, op, "index");
        if (!src.Shape.SequenceEqual(index.Shape))
            throw new ArgumentException($"{op}: src of shape {FormatShape(src.Shape)} must have the shape of index {FormatShape(index.Shape)}");
        // out: [outer, dimDst, inner]; idx, src: [outer, dimSrc, inner]
        var (outer, dimDst, inner) = Split3OrScalar(Shape, d);
        int dimSrc = Rank == 0 ? 1 : index._shape[d];
        var idx = index.IndexAsInt64(op, "index");
        try { CheckIndexRange(idx, dimDst, op, "index", $" (axis {d} of input {FormatShape(Shape)})"); }
        catch { idx.Dispose(); throw; }
        var output = ContiguousCopyNoGrad();
        using (var sc = src.ContiguousNoGrad())
            if (sc.Numel > 0) Device.Kernels.ScatterAdd(sc.Data, (long*)idx.RawPointer, output.Data, outer, dimSrc, dimDst, inner);
        if (!NeedsGrad(this) && !NeedsGrad(src))
        {
            idx.Dispose();
            return output;
        }
        var self = this;
        var srcShape = src._shape.ToArray();
        var result = Record(output, op, [self, src], g =>
        {
            // out = this + scatter(src): this passes g through; src reads g back at the positions it was added to.
            Tensor? gs = null;
            if (src.RequiresGrad)
            {
                using var gc = g.ContiguousNoGrad();
                gs = Empty(srcShape, DType.Float32, g.Device);
                if (gs.Numel > 0) g.Device.Kernels.Gather(gc.Data, (long*)idx.RawPointer, gs.Data, outer, dimDst, dimSrc, inner);
            }
            return [self.RequiresGrad ? g.Alias() : null, gs];
        }, idx);
        idx.Dispose(); // freed when the node that saved it is released
        return result;
    }

    /// <summary>Throws unless other has this rank and this shape on every axis except d.</summary>
    private void CheckSameExceptAxis(Tensor other, int d, string op, string what)
    {
        bool ok = other.Rank == Rank;
        for (int i = 0; ok && i < Rank; i++)
            if (i != d && other._shape[i] != _shape[i]) ok = false;
        if (!ok)
            throw new ArgumentException(
                $"{op}: {what} of shape {FormatShape(other.Shape)} must have the rank of the input {FormatShape(Shape)} and its sizes on every axis except {d}");
    }
}
