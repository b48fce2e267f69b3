using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>The routing decision for N tokens: the chosen experts and their differentiable weights.</summary>
/// <param name="Indices">Chosen expert of token n, slot j at [n·k + j] (biased-score order, best first).</param>
/// <param name="Weights">[N, k]: unbiased scores of the chosen experts, normalised and scaled; carries the gate's gradient.</param>
/// <param name="Scores">[N, E]: the unbiased affinities s (sigmoid or softmax of the router logits), with grad.</param>
public sealed record Routing(int[] Indices, Tensor Weights, Tensor Scores, int TopK, int Experts);

/// <summary>
/// mlp.gate: the DeepSeek-V3 router. logits = x·Wᵀ; s = sigmoid(logits) (or softmax); selection uses
/// s + e_score_correction_bias (noaux_tc), group-limited: a group's score is the sum of its top-2 biased
/// scores, the best topk_group groups are kept (the rest are -inf, never 0: pitfall 4), then top-k among
/// them. The weights are the UNBIASED s of the chosen experts (pitfall 2), renormalised to sum 1 when
/// norm_topk_prob, times routed_scaling_factor. The selection is discrete and computed off the graph, so
/// gradients reach the gate weight only through the chosen experts' weights, and never the bias.
/// </summary>
public sealed class MoeGate : Module
{
    private readonly DeepseekV3Config _c;

    /// <summary>[E, hidden]: the router weight.</summary>
    public Parameter Weight { get; }

    /// <summary>[E] fp32 buffer: added to s for selection only; moved by the aux-loss-free balancing rule.</summary>
    public Tensor ScoreCorrectionBias { get; }

    public MoeGate(DeepseekV3Config c, Generator gen, Device? device = null)
    {
        _c = c;
        // HF inits the router like every linear: N(0, initializer_range).
        Weight = RegisterParameter("weight", ModelParameters.Normal([c.NRoutedExperts, c.HiddenSize], gen, (float)c.InitializerRange, device));
        ScoreCorrectionBias = RegisterBuffer("e_score_correction_bias", ModelParameters.Unscoped([c.NRoutedExperts], 0f, device));
    }

    /// <summary>x: [N, hidden] → the routing of the N tokens.</summary>
    public Routing Route(Tensor x)
    {
        int n = x.Shape[0];
        int e = _c.NRoutedExperts, k = _c.NumExpertsPerTok;
        var logits = Tensor.Linear(x, Weight);                                   // [N, E]
        var scores = _c.ScoringFunc == "softmax" ? logits.Softmax(-1) : logits.Sigmoid();
        var s = scores.ToArray();
        float[]? bias = _c.TopkMethod == "noaux_tc" ? ScoreCorrectionBias.ToArray() : null;
        var indices = SelectExperts(s, bias, n, e, k, _c.NGroup, _c.TopkGroup, _c.TopkMethod == "noaux_tc");

        var idx = Tensor.FromArray(Array.ConvertAll(indices, i => (long)i), [n, k], x.Device);
        var w = scores.Gather(1, idx);                                            // [N, k]
        if (_c.NormTopkProb && k > 1) w = w / w.Sum(1, keepDim: true);
        w = w * (float)_c.RoutedScalingFactor;
        return new Routing(indices, w, scores, k, e);
    }

    /// <summary>
    /// The group-limited top-k on the host: s [N·E] unbiased scores, bias [E] or null. Returns [N·k] expert
    /// ids. Ties go to the lower index (the order torch.topk gives on CPU for equal values in practice).
    /// </summary>
    public static int[] SelectExperts(float[] s, float[]? bias, int n, int e, int k, int groups, int keepGroups, bool topTwoGroupScore)
    {
        var result = new int[n * k];
        int perGroup = e / groups;
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = n >= 256 ? Environment.ProcessorCount : 1 }, () => (new float[e], new float[groups], new bool[groups]),
            (t, _, buf) =>
            {
                var (sc, gs, keep) = buf;
                for (int i = 0; i < e; i++) sc[i] = s[t * e + i] + (bias?[i] ?? 0f);
                if (groups > 1)
                {
                    for (int g = 0; g < groups; g++)
                    {
                        float best = float.NegativeInfinity, second = float.NegativeInfinity;
                        for (int i = g * perGroup; i < (g + 1) * perGroup; i++)
                        {
                            float v = sc[i];
                            if (v > best) { second = best; best = v; }
                            else if (v > second) second = v;
                        }
                        gs[g] = topTwoGroupScore ? best + second : best;
                        keep[g] = false;
                    }
                    for (int r = 0; r < keepGroups; r++)
                    {
                        int bg = -1;
                        for (int g = 0; g < groups; g++)
                            if (!keep[g] && (bg < 0 || gs[g] > gs[bg])) bg = g;
                        keep[bg] = true;
                    }
                    for (int g = 0; g < groups; g++)
                        if (!keep[g])
                            for (int i = g * perGroup; i < (g + 1) * perGroup; i++) sc[i] = float.NegativeInfinity;
                }
                // Top-k by repeated selection (k ≤ 8 in practice; E up to 256).
                for (int j = 0; j < k; j++)
                {
                    int bi = -1;
                    float bv = float.NegativeInfinity;
                    for (int i = 0; i < e; i++)
                        if (sc[i] > bv || (bi < 0 && sc[i] == bv && !float.IsNaN(sc[i]))) { bv = sc[i]; bi = i; }
                    if (bi < 0) bi = FirstNotTaken(result, t * k, j, e);
                    result[t * k + j] = bi;
                    sc[bi] = float.NaN; // taken: NaN compares false with everything
                }
                return buf;
            }, _ => { });
        return result;
    }

    private static int FirstNotTaken(int[] result, int start, int taken, int e)
    {
        for (int i = 0; i < e; i++)
        {
            bool used = false;
            for (int j = 0; j < taken; j++) used |= result[start + j] == i;
            if (!used) return i;
        }
        throw new InvalidOperationException("top-k: more experts requested than exist");
    }
}
