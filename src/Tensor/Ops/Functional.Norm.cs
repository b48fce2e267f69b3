namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// RMS normalisation over the last axis: y = x / sqrt(mean(x²) + eps) · weight.
    /// x: [..., C], weight: [C] → y: [..., C]. Differentiable in x and weight.
    /// </summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, float eps)
    {
        const string op = "rms_norm";
        RequireFloatOn(x, x, op, "x");
        RequireFloatOn(weight, x, op, "weight");
        if (x.Rank < 1 || weight.Rank != 1 || weight.Shape[0] != x.Shape[^1])
            throw new ArgumentException(
                $"{op}: x must be [..., C] and weight [C], got x {Tensor.FormatShape(x.Shape)} and weight {Tensor.FormatShape(weight.Shape)}");
        // xc, y: [rows, C]; wc: [C]; rstd: [rows] (saved for the backward)
        int cols = x.Shape[^1];
        int rows = Product(x.Shape, 0, x.Rank - 1);
        var xc = x.ContiguousNoGrad();
        var wc = weight.ContiguousNoGrad();
        var y = Tensor.Empty(x.Shape, Kernels.DType.Float32, x.Device);
        var rstd = Tensor.Empty([rows], Kernels.DType.Float32, x.Device);
        if (y.Numel > 0) x.Device.Kernels.RmsNorm(xc.Data, wc.Data, y.Data, rstd.Data, rows, cols, eps);
        if (!Tensor.NeedsGrad(x) && !Tensor.NeedsGrad(weight))
        {
            xc.Dispose();
            wc.Dispose();
            rstd.Dispose();
            return y;
        }
        var result = Tensor.Record(y, op, [x, weight], g =>
        {
            using var gc = g.ContiguousNoGrad();
            var dx = Tensor.Empty(xc.Shape, Kernels.DType.Float32, g.Device);
            var dw = Tensor.Empty([cols], Kernels.DType.Float32, g.Device);
            if (dx.Numel > 0) g.Device.Kernels.RmsNormBackward(xc.Data, wc.Data, rstd.Data, gc.Data, dx.Data, dw.Data, rows, cols);
            else g.Device.Kernels.Fill(dw.Data, cols, 0f);
            return [KeepIf(x.RequiresGrad, dx), KeepIf(weight.RequiresGrad, dw)];
        }, xc, wc, rstd);
        // Freed when the node that saved them is released.
        xc.Dispose();
        wc.Dispose();
        rstd.Dispose();
        return result;
    }
}
