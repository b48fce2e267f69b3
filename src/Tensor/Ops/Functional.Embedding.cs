using NativeReasoner.Kernels;

namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// Rows of an embedding table: ids (int64, int32 accepted; any shape) index weight [V, D], giving
    /// ids.shape + [D]. Every id must be in [0, V). Differentiable in weight (rows used several times
    /// collect the sum of their gradients).
    /// </summary>
    public static Tensor Embedding(Tensor ids, Tensor weight)
    {
        const string op = "embedding";
        if (weight.DType is DType.BFloat16 or DType.Float16 && !weight.RequiresGrad)
            return EmbeddingStored(ids, weight);
        RequireFloatOn(weight, weight, op, "weight");
        weight.SameDevice(ids, op);
        if (weight.Rank != 2)
            throw new ArgumentException($"{op}: weight must be [V, D], got {Tensor.FormatShape(weight.Shape)}");
        int V = weight.Shape[0], D = weight.Shape[1];
        var idx = ids.IndexAsInt64(op, "ids");
        try { Tensor.CheckIndexRange(idx, V, op, "id", $" (V = {V}, ids of shape {Tensor.FormatShape(ids.Shape)})"); }
        catch { idx.Dispose(); throw; }
        // idx: [n] (flattened ids); weight: [V, D]; y: [n, D] laid out as ids.shape + [D]
        int n = checked((int)idx.Numel);
        var outShape = ids.Shape.ToArray().Append(D).ToArray();
        var y = Tensor.Empty(outShape, DType.Float32, weight.Device);
        using (var wc = weight.ContiguousNoGrad())
            if (y.Numel > 0) weight.Device.Kernels.IndexSelect(wc.Data, (long*)idx.RawPointer, y.Data, 1, V, n, D);
        if (!Tensor.NeedsGrad(weight))
        {
            idx.Dispose();
            return y;
        }
        var result = Tensor.Record(y, op, [null, weight], g =>
        {
            using var gc = g.ContiguousNoGrad();
            var dw = Tensor.Zeros([V, D], DType.Float32, g.Device);
            if (gc.Numel > 0) g.Device.Kernels.IndexAdd(gc.Data, (long*)idx.RawPointer, dw.Data, 1, n, V, D);
            return [null, dw];
        }, idx);
        idx.Dispose(); // freed when the node that saved it is released
        return result;
    }

    /// <summary>
    /// <see cref="Embedding"/> of a table kept as stored (bfloat16/float16, no gradient): the chosen rows are gathered
    /// in the stored type, then only they are widened to float32.
    /// </summary>
    private static Tensor EmbeddingStored(Tensor ids, Tensor weight)
    {
        const string op = "embedding";
        weight.SameDevice(ids, op);
        if (weight.Rank != 2)
            throw new ArgumentException($"{op}: weight must be [V, D], got {Tensor.FormatShape(weight.Shape)}");
        int V = weight.Shape[0], D = weight.Shape[1];
        if (D % 2 != 0)
        {
            // The gather kernel moves float32 lanes; an odd row of 16-bit values is not a whole number of them.
            using var wide = weight.ToDTypeNoGrad(DType.Float32);
            return Embedding(ids, wide);
        }
        using var idx = ids.IndexAsInt64(op, "ids");
        Tensor.CheckIndexRange(idx, V, op, "id", $" (V = {V}, ids of shape {Tensor.FormatShape(ids.Shape)})");
        // rows: [n, D] in the stored type, gathered as [n, D/2] float32 lanes (pairs of 16-bit values).
        int n = checked((int)idx.Numel);
        var outShape = ids.Shape.ToArray().Append(D).ToArray();
        var y = Tensor.Empty(outShape, DType.Float32, weight.Device);
        if (y.Numel == 0) return y;
        var k = weight.Device.Kernels;
        using var wc = weight.ContiguousNoGrad();
        using var rows = Tensor.Empty([n, D], weight.DType, weight.Device);
        k.IndexSelect((float*)wc.RawPointer, (long*)idx.RawPointer, (float*)rows.RawPointer, 1, V, n, D / 2);
        if (weight.DType == DType.BFloat16) k.BFloat16ToFloat((ushort*)rows.RawPointer, y.Data, (long)n * D);
        else k.HalfToFloat((ushort*)rows.RawPointer, y.Data, (long)n * D);
        return y;
    }
}
