using NativeReasoner.Kernels;

namespace NativeReasoner;

// Softmax and log-softmax along one axis. The kernels work on rows of the last axis; any other axis is
// brought last with a transposed view (copied to contiguous only when needed), and the result is handed
// back as the transposed-back view of that buffer, so no extra copy is made on the way out.
public unsafe partial class Tensor
{
    /// <summary>softmax(x) along <paramref name="dim"/> (max-subtracted; rows sum to 1).</summary>
    public Tensor Softmax(int dim) => SoftmaxAlong(dim, log: false);

    /// <summary>log(softmax(x)) along <paramref name="dim"/>, computed stably (not as Log of Softmax).</summary>
    public Tensor LogSoftmax(int dim) => SoftmaxAlong(dim, log: true);

    private Tensor SoftmaxAlong(int dim, bool log)
    {
        string name = log ? "log_softmax" : "softmax";
        RequireFloat(name);
        int d = NormalizeDim(dim, Rank, name);
        int last = Math.Max(Rank - 1, 0);

        // xt: [..., C] with the softmax axis last (a view; equal to this when d is already last).
        using var xt = Rank == 0 ? Alias() : TransposeNoGrad(d, last);
        using var xc = xt.ContiguousNoGrad();
        int cols = Rank == 0 ? 1 : xc._shape[^1];
        int rows = cols == 0 ? 0 : checked((int)(xc.Numel / cols));
        // yt: [..., C] contiguous; the output is yt with the axes swapped back (a view of the same buffer).
        var yt = Empty(xc.Shape, DType.Float32, Device);
        if (yt.Numel > 0) Device.Kernels.Softmax(xc.Data, yt.Data, rows, cols, log);
        Tensor y;
        using (yt) y = Rank == 0 ? yt.Alias() : yt.TransposeNoGrad(d, last);
        if (!NeedsGrad(this)) return y;

        // The backward needs only the forward output: softmax' and log_softmax' are functions of y.
        return Record(y, name, [this], g =>
        {
            // gt, ytc: [..., C] contiguous (ytc is y's own buffer again, no copy).
            using var gv = g.Rank == 0 ? g.Alias() : g.TransposeNoGrad(d, last);
            using var gt = gv.ContiguousNoGrad();
            using var yv = y.Rank == 0 ? y.Alias() : y.TransposeNoGrad(d, last);
            using var ytc = yv.ContiguousNoGrad();
            var dxt = Empty(gt.Shape, DType.Float32, g.Device);
            if (dxt.Numel > 0) g.Device.Kernels.SoftmaxBackward(ytc.Data, gt.Data, dxt.Data, rows, cols, log);
            if (y.Rank == 0) return [dxt];
            using (dxt) return [dxt.TransposeNoGrad(d, last)];
        });
    }
}
