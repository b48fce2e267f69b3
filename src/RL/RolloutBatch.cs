// Source: TRL trainer/grpo_trainer.py _generate_and_score_completions (completions, masks, log-probs).
namespace NativeReasoner.RL;

/// <summary>
/// A generation batch laid out for the loss: <c>groups</c> prompts × G completions (the G of a prompt
/// contiguous). Completions are right-padded to the longest, C_max; <see cref="Mask"/> [N, C_max] is 1 on
/// each completion's tokens up to and including its EOS. Log-probs are computed one group at a time
/// (a group shares its prompt, so its rows have one prompt length and right padding stays invisible to
/// the causal model), then padded to C_max and stacked.
/// </summary>
public sealed class RolloutBatch
{
    public IReadOnlyList<long[]> Prompts { get; }
    public IReadOnlyList<SampledSequence> Samples { get; }
    public int NumGenerations { get; }
    public int MaxCompletion { get; }
    public int Count => Samples.Count;

    /// <summary>Completion mask, flat [N · C_max].</summary>
    public float[] Mask { get; }

    public RolloutBatch(IReadOnlyList<long[]> prompts, IReadOnlyList<SampledSequence> samples, int numGenerations)
    {
        if (samples.Count != prompts.Count * numGenerations)
            throw new ArgumentException($"{samples.Count} samples for {prompts.Count} prompts × G = {numGenerations}");
        Prompts = prompts;
        Samples = samples;
        NumGenerations = numGenerations;
        MaxCompletion = Math.Max(1, samples.Max(s => s.Tokens.Length));
        Mask = new float[samples.Count * MaxCompletion];
        for (int i = 0; i < samples.Count; i++)
            for (int t = 0; t < samples[i].Tokens.Length; t++) Mask[i * MaxCompletion + t] = 1f;
    }

    public Tensor MaskTensor(bool maskTruncated)
    {
        var m = (float[])Mask.Clone();
        if (maskTruncated)
            for (int i = 0; i < Count; i++)
                if (Samples[i].Truncated) Array.Clear(m, i * MaxCompletion, MaxCompletion);
        return Tensor.FromArray(m, Count, MaxCompletion);
    }

    /// <summary>
    /// Per-token log-probs of the sampled completion tokens under <paramref name="policy"/> at the sampling
    /// temperature: [N, C_max], 0 on padding, in the autograd graph unless called under NoGrad. When
    /// <paramref name="entropy"/> is given it receives the per-token entropies, flat [N · C_max].
    /// </summary>
    public Tensor LogProbs(IPolicy policy, float temperature, float[]? entropy = null)
    {
        int G = NumGenerations, C = MaxCompletion;
        var rows = new List<Tensor>();
        for (int g = 0; g < Prompts.Count; g++)
        {
            var prompt = Prompts[g];
            int P = prompt.Length;
            int Cg = Math.Max(1, Enumerable.Range(0, G).Max(j => Samples[g * G + j].Tokens.Length));
            // ids: [G, P + Cg]; comp: [G, Cg] (padding id 0 is masked out and, being after, unseen by causal attention)
            var ids = new long[G * (P + Cg)];
            var comp = new long[G * Cg];
            var groupMask = new float[G * Cg];                                 // [G, Cg]: 1 on real tokens
            for (int j = 0; j < G; j++)
            {
                var toks = Samples[g * G + j].Tokens;
                Array.Copy(prompt, 0, ids, j * (P + Cg), P);
                Array.Copy(toks, 0, ids, j * (P + Cg) + P, toks.Length);
                Array.Copy(toks, 0, comp, j * Cg, toks.Length);
                for (int t = 0; t < toks.Length; t++) groupMask[j * Cg + t] = 1f;
            }
            var logits = policy.Logits(Tensor.FromArray(ids, G, P + Cg));       // [G, P+Cg, V]
            // Position t predicts token t+1: the completion tokens P..P+Cg−1 come from positions P−1..P+Cg−2.
            var window = logits.Narrow(1, P - 1, Cg);                           // [G, Cg, V]
            // Padding positions are zeroed (they get no gradient either).
            var lp = TokenLogProbs.Selected(window, Tensor.FromArray(comp, G, Cg), temperature) * Tensor.FromArray(groupMask, G, Cg); // [G, Cg]
            if (entropy != null)
            {
                var h = TokenLogProbs.Entropy(window, temperature);
                for (int j = 0; j < G; j++) Array.Copy(h, j * Cg, entropy, (g * G + j) * C, Cg);
            }
            rows.Add(Cg == C ? lp : Tensor.Cat([lp, Tensor.Zeros(G, C - Cg)], 1));
        }
        return rows.Count == 1 ? rows[0] : Tensor.Cat(rows, 0);                // [N, C]
    }

    /// <summary>
    /// The GRPO loss of this batch computed straight from the policy logits by the fused token-loss kernel
    /// (<see cref="Functional.GrpoTokenLoss"/>; only where <see cref="Functional.HasFusedGrpoTokenLoss"/>): the
    /// same value, gradients and metrics as <see cref="LogProbs"/> followed by <see cref="GrpoLoss.Compute"/>, but
    /// without the [N, C] log-prob graph. Per prompt group the kernel reads the whole [G, P + Cg, V] logits: row t
    /// scores token t + 1, so the completion rows are P − 1 .. P + Cg − 2 and every other row (the prompt, the
    /// last position) has mask 0 and gets an exact zero gradient — which is what the backward of a narrow to the
    /// completion window would write, without that copy. The aggregation becomes per-token weights
    /// (<see cref="GrpoLoss.TokenWeights"/>), so the group losses just add up.
    /// </summary>
    /// <param name="oldLogps">Sampling-policy log-probs, flat [N · C_max], or null (ρ ≡ 1).</param>
    /// <param name="refLogps">Reference log-probs, flat [N · C_max]; needed when β ≠ 0.</param>
    /// <param name="advantages">[N].</param>
    /// <param name="mask">Completion mask, flat [N · C_max] (e.g. <see cref="MaskTensor"/>'s values).</param>
    /// <param name="entropy">Receives the per-token entropies, flat [N · C_max], when given.</param>
    public GrpoLossResult FusedLoss(IPolicy policy, float temperature, float[]? oldLogps, float[]? refLogps, float[] advantages,
        float[] mask, GrpoLossOptions options, float[]? entropy = null)
    {
        int G = NumGenerations, C = MaxCompletion, N = Count;
        if (advantages.Length != N) throw new ArgumentException($"grpo_loss: {advantages.Length} advantages for {N} completions");
        // The kernel's ratio is per token; GSPO's per-completion ratio goes through GrpoLoss.Compute.
        if (options.ImportanceSamplingLevel != ImportanceSamplingLevel.Token)
            throw new ArgumentException("grpo_loss: the fused token loss supports importance_sampling_level = token only");
        foreach (var (a, what) in new[] { (mask, "mask"), (oldLogps, "old log-probs"), (refLogps, "reference log-probs") })
            if (a != null && a.Length != N * C) throw new ArgumentException($"grpo_loss: {what} has {a.Length} values for [{N}, {C}]");
        if (options.Beta != 0f && refLogps == null) throw new ArgumentException("grpo_loss: beta ≠ 0 needs the reference log-probs (ref_per_token_logps)");
        var weights = GrpoLoss.TokenWeights(mask, N, C, options);
        var logps = new float[N * C];
        Tensor? total = null;
        using var scope = new TensorScope();
        for (int g = 0; g < Prompts.Count; g++)
        {
            var prompt = Prompts[g];
            int P = prompt.Length;
            int Cg = Math.Max(1, Enumerable.Range(0, G).Max(j => Samples[g * G + j].Tokens.Length));
            int L = P + Cg;
            // ids: [G, L] as LogProbs builds them. Row-aligned with the logits [G, L, V]: target, mask, weight, old,
            // ref at row P − 1 + c hold completion token c's values; 0 (mask 0) elsewhere.
            var ids = new long[G * L];
            var target = new long[G * L];
            var m = new float[G * L];
            var w = new float[G * L];
            var old = oldLogps == null ? null : new float[G * L];
            var rf = refLogps == null ? null : new float[G * L];
            var adv = new float[G];
            for (int j = 0; j < G; j++)
            {
                int n = g * G + j;
                var toks = Samples[n].Tokens;
                Array.Copy(prompt, 0, ids, j * L, P);
                Array.Copy(toks, 0, ids, j * L + P, toks.Length);
                Array.Copy(toks, 0, target, j * L + P - 1, toks.Length);
                // Beyond the sample's own tokens the batch mask is 0 (padding); copying Cg values keeps it so.
                Array.Copy(mask, n * C, m, j * L + P - 1, Cg);
                Array.Copy(weights, n * C, w, j * L + P - 1, Cg);
                if (old != null) Array.Copy(oldLogps!, n * C, old, j * L + P - 1, Cg);
                if (rf != null) Array.Copy(refLogps!, n * C, rf, j * L + P - 1, Cg);
                adv[j] = advantages[n];
            }
            var logits = policy.Logits(Tensor.FromArray(ids, G, L));          // [G, L, V]
            var dev = logits.Device;
            if (entropy != null)
            {
                using var window = logits.Narrow(1, P - 1, Cg);                // [G, Cg, V]
                var h = TokenLogProbs.Entropy(window, temperature);
                for (int j = 0; j < G; j++) Array.Copy(h, j * Cg, entropy, (g * G + j) * C, Cg);
            }
            Tensor? Up(float[]? a) => a == null ? null : Tensor.FromArray(a, [G, L], dev);
            var loss = Functional.GrpoTokenLoss(logits, Tensor.FromArray(target, [G, L], dev), Up(old), Up(rf), Tensor.FromArray(adv, [G], dev),
                Up(m), Up(w), temperature, options.Beta, options.EpsilonLow, options.EffectiveEpsilonHigh, out var lp);
            total = total == null ? loss : total + loss;
            var lpHost = lp.ToArray();                                          // [G, L]
            for (int j = 0; j < G; j++)
            {
                int n = g * G + j, len = Samples[n].Tokens.Length;
                // Padding positions hold 0, as LogProbs leaves them.
                Array.Copy(lpHost, j * L + P - 1, logps, n * C, len);
            }
        }
        total!.MoveToOuterScope();
        return GrpoLoss.Metrics(total, logps, oldLogps, refLogps, advantages, mask, C, options);
    }
}
