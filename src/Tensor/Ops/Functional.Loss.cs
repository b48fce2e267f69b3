using NativeReasoner.Kernels;

namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// Mean cross-entropy of logits [N, V] against int64 targets [N] (int32 accepted): the mean over the
    /// rows whose target is not <paramref name="ignoreIndex"/> of logsumexp(logits[r]) − logits[r, t_r].
    /// A 0-d result; NaN when every row is ignored (as PyTorch). Every target must be in [0, V) or equal
    /// ignoreIndex. Differentiable in the logits.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, long ignoreIndex = -100)
    {
        const string op = "cross_entropy";
        RequireFloatOn(logits, logits, op, "logits");
        logits.SameDevice(targets, op);
        if (logits.Rank != 2 || targets.Rank != 1 || targets.Shape[0] != logits.Shape[0])
            throw new ArgumentException(
                $"{op}: logits must be [N, V] and targets [N], got logits {Tensor.FormatShape(logits.Shape)} and targets {Tensor.FormatShape(targets.Shape)}");
        int rows = logits.Shape[0], V = logits.Shape[1];
        var tc = targets.IndexAsInt64(op, "targets");
        // Validate on the way in (the kernels trust the ids) and count the rows that take part in the mean.
        int count = 0;
        ReadOnlySpan<long> t = tc.Device.IsHost ? new ReadOnlySpan<long>(tc.RawPointer, rows) : tc.ToInt64Array();
        for (int r = 0; r < rows; r++)
        {
            long id = t[r];
            if (id == ignoreIndex) continue;
            if (id < 0 || id >= V)
            {
                tc.Dispose();
                throw new ArgumentOutOfRangeException(nameof(targets),
                    $"{op}: target {id} at row {r} is outside [0, {V}) (V = {V}) and is not the ignore index {ignoreIndex}");
            }
            count++;
        }

        // lc: [N, V]; loss, lse: [N] (lse is saved for the backward); result: 0-d
        var lc = logits.ContiguousNoGrad();
        var lse = Tensor.Empty([rows], DType.Float32, logits.Device);
        var result = Tensor.Empty(ReadOnlySpan<int>.Empty, DType.Float32, logits.Device);
        var k = logits.Device.Kernels;
        if (count == 0)
        {
            // 0/0: PyTorch's mean over no rows. Nothing else is computed; the gradient is zero.
            k.Fill(result.Data, 1, float.NaN);
        }
        else
        {
            using var loss = Tensor.Empty([rows], DType.Float32, logits.Device);
            k.CrossEntropy(lc.Data, (long*)tc.RawPointer, loss.Data, lse.Data, rows, V, ignoreIndex);
            // Ignored rows hold 0, so the sum over all rows is the sum over the counted ones.
            k.Reduce(ReduceOp.Sum, loss.Data, result.Data, 1, rows, 1, null);
            k.Unary(UnaryOp.Scale, result.Data, result.Data, 1, 1f / count);
        }
        if (!Tensor.NeedsGrad(logits))
        {
            lc.Dispose();
            lse.Dispose();
            tc.Dispose();
            return result;
        }
        var recorded = Tensor.Record(result, op, [logits, null], g =>
        {
            // Every row ignored: no row takes part in the loss, so none gets a gradient.
            if (count == 0) return [Tensor.Zeros(lc.Shape, DType.Float32, g.Device), null];
            // d(mean)/d(loss[r]) = g/count for every counted row; the kernel zeroes ignored rows itself.
            using var dloss = Tensor.Full([rows], g.Item() / count, g.Device);
            var dlogits = Tensor.Empty(lc.Shape, DType.Float32, g.Device);
            g.Device.Kernels.CrossEntropyBackward(lc.Data, lse.Data, (long*)tc.RawPointer, dloss.Data, dlogits.Data, rows, V, ignoreIndex);
            return [dlogits, null];
        }, lc, lse, tc);
        // Freed when the node that saved them is released.
        lc.Dispose();
        lse.Dispose();
        tc.Dispose();
        return recorded;
    }
}
