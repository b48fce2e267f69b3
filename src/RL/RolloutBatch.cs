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
}
