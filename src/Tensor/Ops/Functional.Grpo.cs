using NativeReasoner.Kernels;

namespace NativeReasoner;

public static unsafe partial class Functional
{
    /// <summary>
    /// True when <paramref name="device"/>'s kernels compute the GRPO token loss fused
    /// (<see cref="IGrpoTokenLoss"/>: the CUDA, CPU and ILGPU backends), so <see cref="GrpoTokenLoss"/> can run there.
    /// </summary>
    public static bool HasFusedGrpoTokenLoss(Device device) => device.Kernels is IGrpoTokenLoss;

    /// <summary>
    /// GRPO's weighted token loss straight from the policy logits, in one fused kernel
    /// (<see cref="IGrpoTokenLoss.GrpoTokenLoss"/>): returns the 0-d total Σ_r weight[r] · mask[r] · l[r], where l is
    /// the clipped surrogate plus β·k3 of token r (see IGrpoTokenLoss), and the per-token log-probs
    /// <paramref name="logp"/> (no grad; owned by the caller's scope). The kernel writes dlogits (the gradient of the
    /// total) in the same pass; they are saved, and the backward only scales them by the upstream gradient — no
    /// [B, T] log-prob graph, no second pass over the [B, T, V] logits. Differentiable in the logits only: the other
    /// inputs are data (old and reference log-probs, advantages, masks, the aggregation weights) and must not
    /// require grad. Shapes: logits [B, T, V]; ids, old, ref, mask, weight [B, T]; advantages [B] (per sequence).
    /// Only on devices with <see cref="HasFusedGrpoTokenLoss"/>; elsewhere compose log_softmax_gather with the
    /// elementwise objective (RL.GrpoLoss), which gives the same numbers.
    /// </summary>
    public static Tensor GrpoTokenLoss(Tensor logits, Tensor ids, Tensor? oldLogp, Tensor? refLogp, Tensor advantages, Tensor? mask,
        Tensor? weight, float temperature, float beta, float epsilonLow, float epsilonHigh, out Tensor logp)
    {
        const string op = "grpo_token_loss";
        RequireFloatOn(logits, logits, op, "logits");
        if (logits.Device.Kernels is not IGrpoTokenLoss fused)
            throw new NotSupportedException($"{op}: the {logits.Device} kernels ({logits.Device.Kernels.Name}) have no fused GRPO token loss");
        if (logits.Rank != 3)
            throw new ArgumentException($"{op}: logits must be [B, T, V], got {Tensor.FormatShape(logits.Shape)}");
        int B = logits.Shape[0], T = logits.Shape[1], V = logits.Shape[2];
        logits.SameDevice(ids, op);
        ids.Expect([B, T], $"{op}: ids");
        advantages.Expect([B], $"{op}: advantages");
        RequireFloatOn(advantages, logits, op, "advantages");
        foreach (var (t, what) in new[] { (oldLogp, "old log-probs"), (refLogp, "reference log-probs"), (mask, "mask"), (weight, "weight") })
        {
            if (t == null) continue;
            RequireFloatOn(t, logits, op, what);
            t.Expect([B, T], $"{op}: {what}");
        }
        foreach (var t in new[] { oldLogp, refLogp, advantages, mask, weight })
            if (t != null && Tensor.NeedsGrad(t))
                throw new ArgumentException($"{op}: only the logits are differentiated; detach the other inputs");
        if (beta != 0f && refLogp == null) throw new ArgumentException($"{op}: beta ≠ 0 needs the reference log-probs");
        // Validates temperature and epsilons (and T ≥ 1) with the kernel's own messages.
        var options = new GrpoTokenLossOptions(temperature, beta, epsilonLow, epsilonHigh, Math.Max(1, T));
        int rows = B * T;

        var ic = ids.IndexAsInt64(op, "ids");
        // The kernel trusts the ids.
        try { Tensor.CheckIndexRange(ic, V, op, "id", $" (V = {V}, ids of shape {Tensor.FormatShape(ids.Shape)})"); }
        catch { ic.Dispose(); throw; }

        // lc: [rows, V]; the optional [rows] inputs contiguous (views when they already are).
        var lc = logits.ContiguousNoGrad();
        var oc = oldLogp?.ContiguousNoGrad();
        var rc = beta != 0f ? refLogp!.ContiguousNoGrad() : null;
        var ac = advantages.ContiguousNoGrad();
        var mc = mask?.ContiguousNoGrad();
        var wc = weight?.ContiguousNoGrad();
        bool grad = Tensor.NeedsGrad(logits);
        var tokenLoss = Tensor.Empty([B, T], DType.Float32, logits.Device);  // mask · l per token
        logp = Tensor.Empty([B, T], DType.Float32, logits.Device);
        // dlogits: [B, T, V], the gradient of the returned total; only when it will be needed.
        var dlogits = grad ? Tensor.Empty([B, T, V], DType.Float32, logits.Device) : null;
        Tensor total;
        try
        {
            if (rows > 0)
                fused.GrpoTokenLoss(lc.Data, (long*)ic.RawPointer, Ptr(oc), Ptr(rc), ac.Data, Ptr(mc), Ptr(wc),
                    tokenLoss.Data, logp.Data, dlogits == null ? null : dlogits.Data, rows, V, options);
            // The total on the device (no host round trip): Σ weight · (mask · l).
            using (Tensor.NoGrad())
            {
                if (wc == null) total = tokenLoss.Sum();
                else
                {
                    using var weighted = tokenLoss * wc;
                    total = weighted.Sum();
                }
            }
        }
        finally
        {
            tokenLoss.Dispose();
            lc.Dispose();
            ic.Dispose();
            oc?.Dispose();
            rc?.Dispose();
            ac.Dispose();
            mc?.Dispose();
            wc?.Dispose();
        }
        if (dlogits == null) return total;
        var result = Tensor.Record(total, op, [logits], g =>
        {
            // The kernel's dlogits already carry every weight; the chain rule only needs the upstream scalar
            // (1 for loss.Backward(), something else under a further scale or sum). A broadcast multiply on the
            // device keeps the scalar off the host.
            return [dlogits * g];
        }, dlogits);
        // Freed when the node that saved it is released.
        dlogits.Dispose();
        return result;
    }

    private static float* Ptr(Tensor? t) => t == null ? null : t.Data;
}
