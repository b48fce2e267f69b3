using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>The routing decision for N tokens: the chosen experts and their differentiable weights.</summary>
/// <param name="Indices">int32 [N, k] on the device: chosen expert of token n, slot j (biased-score order, best first).</param>
/// <param name="Weights">[N, k]: unbiased scores of the chosen experts, normalised and scaled; carries the gate's gradient when grad mode is on.</param>
/// <param name="Scores">[N, E]: the unbiased affinities s (sigmoid or softmax of the router logits), with grad.</param>
public sealed record Routing(Tensor Indices, Tensor Weights, Tensor Scores, int TopK, int Experts);

/// <summary>
/// mlp.gate: the DeepSeek-V3 router. logits = x·Wᵀ; s = sigmoid(logits) (or softmax); selection uses
/// s + e_score_correction_bias (noaux_tc), group-limited: a group's score is the sum of its top-2 biased
/// scores, the best topk_group groups are kept (the rest are -inf, never 0: deepseek-v3-notes 4), then top-k among
/// them. The weights are the UNBIASED s of the chosen experts (deepseek-v3-notes 2), renormalised to sum 1 when
/// norm_topk_prob, times routed_scaling_factor. The selection runs in the device's MoeRoute kernel (nothing
/// goes to the host) and is discrete, so gradients reach the gate weight only through the chosen experts'
/// weights — a gather of s at the kernel's indices, normalised and scaled with ordinary differentiable ops —
/// and never the bias.
/// <para>deepseek_v2 (the checkpoints' own modeling_deepseek.py): softmax scores and no correction bias (none is
/// registered, so a V2 checkpoint loads strictly); "greedy" is top-k over all experts, "group_limited_greedy"
/// keeps the topk_group groups with the largest single score; and the V2 gate either renormalises (norm_topk_prob
/// and k &gt; 1) or scales by routed_scaling_factor, never both.</para>
/// </summary>
public sealed class MoeGate : Module
{
    private readonly DeepseekV3Config _c;

    /// <summary>[E, hidden]: the router weight.</summary>
    public Parameter Weight { get; }

    /// <summary>
    /// [E] fp32 buffer: added to s for selection only; moved by the aux-loss-free balancing rule. Null when the
    /// family has none (deepseek_v2).
    /// </summary>
    public Tensor? ScoreCorrectionBias { get; }

    public MoeGate(DeepseekV3Config c, Generator gen, Device? device = null)
    {
        _c = c;
        // HF inits the router like every linear: N(0, initializer_range).
        Weight = RegisterParameter("weight", ModelParameters.Normal([c.NRoutedExperts, c.HiddenSize], gen, (float)c.InitializerRange, device));
        if (c.HasScoreCorrectionBias)
            ScoreCorrectionBias = RegisterBuffer("e_score_correction_bias",
                ModelParameters.Unscoped([c.NRoutedExperts], 0f, device));
    }

    /// <summary>
    /// Routing replay: when set, every <see cref="Route"/> goes through the tape as MoE layer <see cref="TapeLayer"/>.
    /// </summary>
    public RoutingTape? Tape { get; private set; }

    /// <summary>This gate's MoE layer ordinal on <see cref="Tape"/>.</summary>
    public int TapeLayer { get; private set; }

    public void AttachTape(RoutingTape? tape, int layer)
    {
        Tape = tape;
        TapeLayer = layer;
    }

    /// <summary>x: [N, hidden] → the routing of the N tokens.</summary>
    public Routing Route(Tensor x)
    {
        int k = _c.NumExpertsPerTok;
        var logits = Tensor.Linear(x, Weight);                                   // [N, E]
        var scores = _c.ScoringFunc == "softmax" ? logits.Softmax(-1) : logits.Sigmoid();
        bool useBias = _c.TopkMethod == "noaux_tc";
        if (useBias && ScoreCorrectionBias == null)
            throw new InvalidOperationException(
                $"{_c.ModelType}: topk_method noaux_tc needs e_score_correction_bias, which this router does not hold");
        // Greedy routing has one group holding every expert.
        bool greedy = _c.TopkMethod == "greedy";
        int groups = greedy ? 1 : _c.NGroup, keptGroups = greedy ? 1 : _c.TopkGroup;
        // The original code normalises only for k > 1 (one weight divided by itself is 1, but its gradient is 0).
        bool normalize = _c.NormTopkProb && k > 1;
        // V3 scales after normalising; the V2 gate scales only the weights it does not renormalise.
        float scale = _c.IsV2 && normalize ? 1f : (float)_c.RoutedScalingFactor;
        var (indices, kernelWeights) =
            Functional.MoeRoute(scores, ScoreCorrectionBias, groups, keptGroups, k, useBias, normalize, scale);
        bool replayed = false;
        if (Tape != null)
        {
            var chosen = Tape.Apply(TapeLayer, indices);
            if (!ReferenceEquals(chosen, indices))
            {
                indices.Dispose();
                indices = chosen;
                replayed = true;
            }
        }
        if (!replayed && !(Autograd.GradMode.IsEnabled && scores.RequiresGrad))
            return new Routing(indices, kernelWeights, scores, k, _c.NRoutedExperts);

        // With grad (or replayed experts): the weights from ordinary ops on s at the chosen experts.
        kernelWeights.Dispose();
        var w = Functional.MoeGatherScores(scores, indices);                     // [N, k]
        if (normalize) w = w / w.Sum(1, keepDim: true);
        w = w * scale;
        return new Routing(indices, w, scores, k, _c.NRoutedExperts);
    }

    /// <summary>
    /// The group-limited top-k on host arrays (tests, tools): s [N·E] unbiased scores, bias [E] or null
    /// (null: no bias and the max group score, the V2 rule). Returns [N·k] expert ids, best first, with the
    /// tie rules of <see cref="NativeReasoner.Kernels.IKernels.MoeRoute"/> (equal scores: lower index).
    /// </summary>
    public static unsafe int[] SelectExperts(float[] s, float[]? bias, int n, int e, int k, int groups, int keepGroups, bool topTwoGroupScore)
    {
        if (bias != null && !topTwoGroupScore)
            throw new ArgumentException("a correction bias implies the top-2 group score (noaux_tc)");
        // Without a bias but with the top-2 rule, a zero bias selects exactly as none would.
        var b = bias ?? new float[e];
        var result = new int[n * k];
        var sel = new float[n * e];
        var w = new float[n * k];
        fixed (float* ps = s, pb = b, psel = sel, pw = w)
        fixed (int* pi = result)
            NativeReasoner.Kernels.Cpu.CpuKernels.Instance.MoeRoute(ps, pb, n, e, groups, keepGroups, k, topTwoGroupScore, psel, pi, pw, false, 1f);
        return result;
    }

    /// <summary>
    /// The auxiliary-loss-free update: every expert's bias moves by γ toward balance,
    /// b_i += γ·sign(mean load − load_i), over <paramref name="load"/> (tokens routed to each expert since the last
    /// reset; the caller resets it). Shared by the one-process and the expert-parallel MoE layers.
    /// </summary>
    public void StepBiasTowardBalance(float gamma, long[] load)
    {
        var bias = ScoreCorrectionBias ?? throw new InvalidOperationException(
            $"{_c.ModelType}: the router has no e_score_correction_bias, so the aux-loss-free bias update " +
            "does not apply");
        double mean = load.Average();
        var delta = new float[load.Length];
        for (int i = 0; i < delta.Length; i++) delta[i] = gamma * Math.Sign(mean - load[i]);
        using (Tensor.NoGrad())
        using (var scope = new TensorScope())
        {
            var updated = bias + Tensor.FromArray(delta, [delta.Length], bias.Device);
            bias.CopyFrom_(updated);
        }
    }
}
