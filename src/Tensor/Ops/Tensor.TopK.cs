using NativeReasoner.Kernels;

namespace NativeReasoner;

// The k largest entries along the last axis (sampling, routing).
public unsafe partial class Tensor
{
    /// <summary>
    /// The <paramref name="k"/> largest values of each row of the last axis, sorted descending, and their
    /// int64 indices (ties: lower index first; NaN ranks above every number). Values: [..., k], indices
    /// [..., k]. Only the values are differentiable: their gradient goes back to the chosen positions.
    /// </summary>
    public (Tensor Values, Tensor Indices) TopK(int k)
    {
        const string op = "topk";
        RequireFloat(op);
        // x: [rows, cols] over the last axis (a 0-d tensor is one row of one element, as in PyTorch).
        int cols = Rank == 0 ? 1 : _shape[^1];
        if (k < 1 || k > cols)
            throw new ArgumentOutOfRangeException(nameof(k),
                $"{op}: k = {k} is outside [1, {cols}] (last axis of shape {FormatShape(Shape)})");
        int rows = checked((int)(Numel / cols));
        var outShape = _shape.ToArray();
        if (Rank > 0) outShape[^1] = k;
        var values = Empty(outShape, DType.Float32, Device);
        var indices = Empty(outShape, DType.Int64, Device);
        using (var xc = ContiguousNoGrad())
            if (values.Numel > 0) Device.Kernels.TopK(xc.Data, values.Data, (long*)indices.RawPointer, rows, cols, k);
        if (!NeedsGrad(this)) return (values, indices);

        var inShape = _shape.ToArray();
        // indices is saved: the caller may dispose it before backward (the release is then deferred).
        Record(values, op, [this], g =>
        {
            using var gc = g.ContiguousNoGrad();
            var dx = Zeros(inShape, DType.Float32, g.Device);
            if (gc.Numel > 0) g.Device.Kernels.ScatterAdd(gc.Data, (long*)indices.RawPointer, dx.Data, rows, k, cols, 1);
            return [dx];
        }, indices);
        return (values, indices);
    }
}
