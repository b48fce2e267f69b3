using NativeReasoner.Kernels;

namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// SwiGLU's product y = silu(gate) · up = gate · σ(gate) · up in one fused kernel (no silu(gate)
    /// intermediate). gate and up have the same shape (no broadcasting). Differentiable in both.
    /// </summary>
    public static Tensor SiluMul(Tensor gate, Tensor up)
    {
        const string op = "silu_mul";
        RequireFloatOn(gate, gate, op, "gate");
        RequireFloatOn(up, gate, op, "up");
        if (!gate.Shape.SequenceEqual(up.Shape))
            throw new ArgumentException(
                $"{op}: gate and up must have the same shape, got gate {Tensor.FormatShape(gate.Shape)} and up {Tensor.FormatShape(up.Shape)}");
        // gc, uc, y: [n] flattened, laid out as gate.shape
        var gc = gate.ContiguousNoGrad();
        var uc = up.ContiguousNoGrad();
        var y = Tensor.Empty(gate.Shape, DType.Float32, gate.Device);
        long n = y.Numel;
        if (n > 0) gate.Device.Kernels.SiluMul(gc.Data, uc.Data, y.Data, n);
        if (!Tensor.NeedsGrad(gate) && !Tensor.NeedsGrad(up))
        {
            gc.Dispose();
            uc.Dispose();
            return y;
        }
        var result = Tensor.Record(y, op, [gate, up], g =>
        {
            using var dy = g.ContiguousNoGrad();
            var dgate = Tensor.Empty(gc.Shape, DType.Float32, g.Device);
            var dup = Tensor.Empty(uc.Shape, DType.Float32, g.Device);
            if (n > 0) g.Device.Kernels.SiluMulBackward(gc.Data, uc.Data, dy.Data, dgate.Data, dup.Data, n);
            return [KeepIf(gate.RequiresGrad, dgate), KeepIf(up.RequiresGrad, dup)];
        }, gc, uc);
        // Freed when the node that saved them is released.
        gc.Dispose();
        uc.Dispose();
        return result;
    }

    /// <summary>
    /// Per-position log-probability of one id under softmax(logits / temperature), without materialising the
    /// log-softmax: logits [..., V], ids [...] (int64 or int32, each in [0, V)) → logp [...] with
    /// logp = logits[..., id] / T − logsumexp(logits / T). GRPO's policy log-probs. Differentiable in the logits.
    /// </summary>
    public static Tensor LogSoftmaxGather(Tensor logits, Tensor ids, float temperature = 1f)
    {
        const string op = "log_softmax_gather";
        RequireFloatOn(logits, logits, op, "logits");
        logits.SameDevice(ids, op);
        if (!(temperature > 0f) || float.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), $"{op}: temperature must be positive and finite, got {temperature}");
        if (logits.Rank < 1 || !ids.Shape.SequenceEqual(logits.Shape[..^1]))
            throw new ArgumentException(
                $"{op}: logits must be [..., V] and ids [...], got logits {Tensor.FormatShape(logits.Shape)} and ids {Tensor.FormatShape(ids.Shape)}");
        int V = logits.Shape[^1];
        int rows = Product(logits.Shape, 0, logits.Rank - 1);
        var ic = ids.IndexAsInt64(op, "ids");
        // The kernels trust the ids.
        try { Tensor.CheckIndexRange(ic, V, op, "id", $" (V = {V}, ids of shape {Tensor.FormatShape(ids.Shape)})"); }
        catch { ic.Dispose(); throw; }

        // lc: [rows, V]; logp, lse: [rows] (lse saved for the backward); logp laid out as ids.shape
        float invT = 1f / temperature;
        var lc = logits.ContiguousNoGrad();
        var logp = Tensor.Empty(ids.Shape, DType.Float32, logits.Device);
        var lse = Tensor.Empty([rows], DType.Float32, logits.Device);
        if (rows > 0) logits.Device.Kernels.LogSoftmaxGather(lc.Data, (long*)ic.RawPointer, logp.Data, lse.Data, rows, V, invT);
        if (!Tensor.NeedsGrad(logits))
        {
            lc.Dispose();
            lse.Dispose();
            ic.Dispose();
            return logp;
        }
        var result = Tensor.Record(logp, op, [logits, null], g =>
        {
            using var dlogp = g.ContiguousNoGrad();
            var dlogits = Tensor.Empty(lc.Shape, DType.Float32, g.Device);
            if (rows > 0)
                g.Device.Kernels.LogSoftmaxGatherBackward(lc.Data, (long*)ic.RawPointer, lse.Data, dlogp.Data, dlogits.Data, rows, V, invT);
            return [dlogits, null];
        }, lc, lse, ic);
        // Freed when the node that saved them is released.
        lc.Dispose();
        lse.Dispose();
        ic.Dispose();
        return result;
    }
}
