namespace NativeReasoner.RL;

/// <summary>
/// The GRPO loss of one batch and the metrics TRL logs with it. Owns <see cref="Loss"/> (a 0-d tensor in
/// the autograd graph of the policy log-probs); dispose it after the backward, or let a scope do it.
/// </summary>
public sealed class GrpoLossResult : IDisposable
{
    public required Tensor Loss { get; init; }

    /// <summary>Masked mean of the k3 KL per token; NaN when β = 0 (TRL logs <c>kl</c> only then).</summary>
    public float Kl { get; init; } = float.NaN;

    /// <summary>Share of active tokens with ratio &lt; 1 − ε_low and A &lt; 0 (<c>clip_ratio/low_mean</c>).</summary>
    public float ClipRatioLow { get; init; }

    /// <summary>Share of active tokens with ratio &gt; 1 + ε_high and A &gt; 0 (<c>clip_ratio/high_mean</c>).</summary>
    public float ClipRatioHigh { get; init; }

    /// <summary>Either of the above (<c>clip_ratio/region_mean</c>).</summary>
    public float ClipRatioRegion { get; init; }

    public void Dispose() => Loss.Dispose();
}

/// <summary>
/// GRPO's clipped surrogate with the k3 KL penalty, aggregated as TRL's <c>_compute_loss</c> does.
/// Per token (shapes: logp, old, ref, mask [B, T]; A [B] broadcast as [B, 1]):
/// <code>
/// ρ = exp(logp − old)                      old = logp.detach() when not given (μ = 1: ρ ≡ 1, gradient still flows)
/// ρ = exp(Σ_t m·(logp − old) / max(1, Σ_t m))   per completion, on all its tokens (sequence level, GSPO 2507.18071)
/// l = −min(ρ·A, clamp(ρ, 1 − ε_low, 1 + ε_high)·A)
/// l += β · (exp(ref − logp) − (ref − logp) − 1)       when β ≠ 0
/// </code>
/// then grpo / bnpo / dr_grpo / dapo aggregation over the mask (see <see cref="LossType"/>).
/// </summary>
public static class GrpoLoss
{
    /// <param name="logps">Policy log-probs of the sampled tokens [B, T], in the autograd graph.</param>
    /// <param name="oldLogps">Log-probs of the sampling policy [B, T] (no grad), or null for logps.detach().</param>
    /// <param name="refLogps">Reference-policy log-probs [B, T]; required when β ≠ 0.</param>
    /// <param name="advantages">A per completion [B].</param>
    /// <param name="mask">1 on completion tokens that count, 0 elsewhere [B, T].</param>
    public static GrpoLossResult Compute(Tensor logps, Tensor? oldLogps, Tensor? refLogps, Tensor advantages, Tensor mask, GrpoLossOptions options)
    {
        ArgumentNullException.ThrowIfNull(logps);
        ArgumentNullException.ThrowIfNull(advantages);
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(options);
        if (logps.Rank != 2) throw new ArgumentException($"grpo_loss: per-token log-probs must be [B, T], got {Tensor.FormatShape(logps.Shape)}");
        int B = logps.Shape[0], T = logps.Shape[1];
        mask.Expect([B, T], "grpo_loss: completion_mask");
        advantages.Expect([B], "grpo_loss: advantages");
        oldLogps?.Expect([B, T], "grpo_loss: old_per_token_logps");
        if (options.Beta != 0f)
        {
            if (refLogps == null) throw new ArgumentException("grpo_loss: beta ≠ 0 needs the reference log-probs (ref_per_token_logps)");
            refLogps.Expect([B, T], "grpo_loss: ref_per_token_logps");
        }
        float epsLow = options.EpsilonLow, epsHigh = options.EffectiveEpsilonHigh;
        if (epsLow < 0 || epsHigh < 0) throw new ArgumentOutOfRangeException(nameof(options), $"grpo_loss: epsilons must be ≥ 0, got {epsLow} / {epsHigh}");

        var maskArr = mask.ToArray();
        var adv = advantages.ToArray();

        // All temporaries live in this scope; only the loss leaves it (MoveToOuterScope at the end).
        using var scope = new TensorScope();
        var old = oldLogps ?? logps.Detach();
        var a = advantages.Unsqueeze(1);                      // [B, 1]
        Tensor coef1;
        var lens = new float[B];
        for (int i = 0; i < B; i++)
        {
            float s = 0;
            for (int t = 0; t < T; t++) s += maskArr[i * T + t];
            lens[i] = Math.Max(1f, s);
        }
        var lensT = Tensor.FromArray(lens, [B], logps.Device);
        if (options.ImportanceSamplingLevel == ImportanceSamplingLevel.Sequence)
        {
            // GSPO: one ratio per completion, exp of the masked mean log-ratio, repeated on each of its tokens
            // (the gradient of the mean reaches every active token with weight 1 / |o_i|).
            var seqLogRatio = ((logps - old) * mask).Sum(1) / lensT;                 // [B]
            coef1 = seqLogRatio.Exp().Unsqueeze(1) * Tensor.Full([B, T], 1f, logps.Device); // [B, T]
        }
        else coef1 = (logps - old).Exp();                       // [B, T]
        var c1 = coef1.ToArray();

        // clamp(ρ, lo, hi) as two selections; the masks are data, not differentiated. Inside the range the
        // gradient passes through, as torch.clamp's (boundaries inclusive).
        float lo = 1f - epsLow, hi = 1f + epsHigh;
        var dev = logps.Device;
        var below = MaskOf(c1, v => v < lo, B, T, dev);
        var above = MaskOf(c1, v => v > hi, B, T, dev);
        var coef2 = Tensor.Where(below, Tensor.Scalar(lo, dev), Tensor.Where(above, Tensor.Scalar(hi, dev), coef1));
        var l1 = coef1 * a;                                   // [B, T]
        var l2 = coef2 * a;                                   // [B, T]
        // min(l1, l2): where they tie both paths carry the same gradient, so picking l1 is exact.
        var v1 = l1.ToArray();
        var v2 = l2.ToArray();
        var takeFirst = MaskOf(B, T, i => v1[i] <= v2[i], dev);
        var perToken = -Tensor.Where(takeFirst, l1, l2);      // [B, T]

        float kl = float.NaN;
        if (options.Beta != 0f)
        {
            var d = refLogps! - logps;                         // [B, T]
            var k3 = d.Exp() - d - 1f;                         // ≥ 0
            kl = MaskedMean(k3.ToArray(), maskArr);
            perToken = perToken + k3 * options.Beta;
        }

        var masked = perToken * mask;                          // [B, T]
        int ga = Math.Max(1, options.GradientAccumulationSteps);
        Tensor loss;
        switch (options.LossType)
        {
            case LossType.Grpo:
                // Σ_t m·l / max(1, Σ_t m) per sequence, then the mean over sequences.
                loss = (masked.Sum(1) / lensT).Mean() / ga;
                break;
            case LossType.Bnpo:
                loss = masked.Sum() / (Math.Max(1f, maskArr.Sum()) * ga);
                break;
            case LossType.DrGrpo:
                if (options.MaxCompletionLength <= 0)
                    throw new ArgumentException("grpo_loss: dr_grpo needs max_completion_length > 0 (its constant normaliser)");
                loss = masked.Sum() / ((float)B * options.MaxCompletionLength * ga);
                break;
            default:
                loss = masked.Sum() / Math.Max(1f, options.NumItemsInBatch ?? maskArr.Sum());
                break;
        }

        // Clip metrics: tokens whose ratio left the trust region in the direction the advantage pushes. At sequence
        // level TRL takes the plain mean over completions (its ratio has one column), empty ones included.
        double low = 0, high = 0, region = 0, count = 0;
        bool perSequence = options.ImportanceSamplingLevel == ImportanceSamplingLevel.Sequence;
        for (int i = 0; i < B; i++)
            for (int t = 0; t < (perSequence ? 1 : T); t++)
            {
                float m = perSequence ? 1f : maskArr[i * T + t];
                if (m == 0) continue;
                float r = c1[i * T + t];
                bool isLow = r < lo && adv[i] < 0, isHigh = r > hi && adv[i] > 0;
                low += isLow ? m : 0;
                high += isHigh ? m : 0;
                region += isLow || isHigh ? m : 0;
                count += m;
            }
        count = Math.Max(1.0, count);
        loss.MoveToOuterScope();
        return new GrpoLossResult
        {
            Loss = loss,
            Kl = kl,
            ClipRatioLow = (float)(low / count),
            ClipRatioHigh = (float)(high / count),
            ClipRatioRegion = (float)(region / count),
        };
    }

    /// <summary>
    /// ∂(aggregated loss)/∂(masked per-token loss) for each token, flat [B·T]: the aggregation of
    /// <see cref="Compute"/> written as a weighted sum Σ w·(m·l), so a fused per-token kernel
    /// (<see cref="Functional.GrpoTokenLoss"/>) gives the same scalar. grpo: 1 / (max(1, Σ_t m of the row's
    /// sequence) · B · ga); bnpo: 1 / (max(1, Σ m) · ga); dr_grpo: 1 / (B · L_max · ga); dapo: 1 / max(1,
    /// num_items_in_batch ?? Σ m). <paramref name="B"/> is the micro-batch's sequence count (the mean over sequences).
    /// </summary>
    public static float[] TokenWeights(float[] mask, int B, int T, GrpoLossOptions options)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(options);
        if (mask.Length != B * T) throw new ArgumentException($"grpo_loss: mask has {mask.Length} values for [{B}, {T}]");
        int ga = Math.Max(1, options.GradientAccumulationSteps);
        var w = new float[B * T];
        switch (options.LossType)
        {
            case LossType.Grpo:
                for (int i = 0; i < B; i++)
                {
                    float s = 0;
                    for (int t = 0; t < T; t++) s += mask[i * T + t];
                    float wi = 1f / (Math.Max(1f, s) * B * ga);
                    Array.Fill(w, wi, i * T, T);
                }
                break;
            case LossType.Bnpo:
                Array.Fill(w, 1f / (Math.Max(1f, mask.Sum()) * ga));
                break;
            case LossType.DrGrpo:
                if (options.MaxCompletionLength <= 0)
                    throw new ArgumentException("grpo_loss: dr_grpo needs max_completion_length > 0 (its constant normaliser)");
                Array.Fill(w, 1f / ((float)B * options.MaxCompletionLength * ga));
                break;
            default:
                Array.Fill(w, 1f / Math.Max(1f, options.NumItemsInBatch ?? mask.Sum()));
                break;
        }
        return w;
    }

    /// <summary>
    /// The metrics of <see cref="Compute"/> (KL when β ≠ 0, the three clip ratios) from host copies of the per-token
    /// log-probs, flat [B·T]: what the fused path logs, computed as the composition computes them.
    /// </summary>
    public static GrpoLossResult Metrics(Tensor loss, float[] logps, float[]? oldLogps, float[]? refLogps, float[] advantages,
        float[] mask, int T, GrpoLossOptions options)
    {
        float lo = 1f - options.EpsilonLow, hi = 1f + options.EffectiveEpsilonHigh;
        float kl = float.NaN;
        if (options.Beta != 0f)
        {
            if (refLogps == null) throw new ArgumentException("grpo_loss: beta ≠ 0 needs the reference log-probs (ref_per_token_logps)");
            var k3 = new float[logps.Length];
            for (int i = 0; i < k3.Length; i++)
            {
                float d = refLogps[i] - logps[i];
                k3[i] = MathF.Exp(d) - d - 1f;
            }
            kl = MaskedMean(k3, mask);
        }
        double low = 0, high = 0, region = 0, count = 0;
        for (int i = 0; i < logps.Length; i++)
        {
            float m = mask[i];
            if (m == 0) continue;
            float r = oldLogps == null ? 1f : MathF.Exp(logps[i] - oldLogps[i]);
            float a = advantages[i / T];
            bool isLow = r < lo && a < 0, isHigh = r > hi && a > 0;
            low += isLow ? m : 0;
            high += isHigh ? m : 0;
            region += isLow || isHigh ? m : 0;
            count += m;
        }
        count = Math.Max(1.0, count);
        return new GrpoLossResult
        {
            Loss = loss,
            Kl = kl,
            ClipRatioLow = (float)(low / count),
            ClipRatioHigh = (float)(high / count),
            ClipRatioRegion = (float)(region / count),
        };
    }

    /// <summary>Σ m·x / max(1, Σ m) over flat [B·T] arrays.</summary>
    public static float MaskedMean(float[] x, float[] mask)
    {
        double s = 0, c = 0;
        for (int i = 0; i < x.Length; i++)
        {
            s += x[i] * mask[i];
            c += mask[i];
        }
        return (float)(s / Math.Max(1.0, c));
    }

    /// <summary>
    /// mask_truncated_completions: a copy of mask [B, T] with the rows of truncated completions (no EOS
    /// within the length limit) zeroed, so they add neither loss nor tokens to any normaliser.
    /// </summary>
    public static Tensor MaskTruncated(Tensor mask, IReadOnlyList<bool> truncated)
    {
        if (mask.Rank != 2 || mask.Shape[0] != truncated.Count)
            throw new ArgumentException($"mask_truncated: mask {Tensor.FormatShape(mask.Shape)} vs {truncated.Count} completions");
        int B = mask.Shape[0], T = mask.Shape[1];
        var m = mask.ToArray();
        for (int i = 0; i < B; i++)
            if (truncated[i]) Array.Clear(m, i * T, T);
        return Tensor.FromArray(m, [B, T], mask.Device);
    }

    private static Tensor MaskOf(float[] values, Func<float, bool> pred, int B, int T, Device device) => MaskOf(B, T, i => pred(values[i]), device);

    // A 0/1 float mask [B, T] on the operands' device.
    private static Tensor MaskOf(int B, int T, Func<int, bool> pred, Device device)
    {
        var m = new float[B * T];
        for (int i = 0; i < m.Length; i++) m[i] = pred(i) ? 1f : 0f;
        return Tensor.FromArray(m, [B, T], device);
    }
}
