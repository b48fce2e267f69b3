// Source: DeepSeek-V3 technical report (arXiv:2412.19437) §2.1.2: DeepSeekMoE, auxiliary-loss-free load balancing and
//         the sequence-wise balance loss; official inference/model.py MoE.
using NativeReasoner.Kernels;
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// DeepSeekMoE block: y = Σ_j w_j · Expert_{e_j}(x) + SharedExperts(x). The routed experts run grouped by
/// expert, all on the device's kernels: the router picks the experts (MoeRoute), the token-slots are
/// counting-sorted by expert (MoePermute), the token rows are dispatched into expert order so each expert's
/// batch is contiguous, every expert runs its three GEMMs on its own rows (GroupedSwiGlu), and the outputs
/// are combined back into token order with the routing weights (MoeCombine). No per-token loop; only the
/// [E + 1] expert offsets reach the host. Each step's backward is its adjoint (combine ↔ dispatch).
/// Also keeps the expert load of the last forward (for balancing and statistics) and, when
/// <see cref="BalanceLossAlpha"/> &gt; 0 in training mode, the sequence-wise balance loss.
/// </summary>
public sealed class MoeLayer : Module
{
    private readonly DeepseekV3Config _c;

    public MoeGate Gate { get; }
    public ModuleList<SwiGluMlp> Experts { get; }
    public SwiGluMlp? SharedExperts { get; }

    /// <summary>Tokens routed to each expert in the last forward ([E]).</summary>
    public long[] LastLoad { get; private set; }

    /// <summary>Tokens routed to each expert since the last <see cref="ResetLoad"/> (summed over forwards).</summary>
    public long[] AccumulatedLoad { get; }

    /// <summary>α of the complementary sequence-wise balance loss (0 = off).</summary>
    public float BalanceLossAlpha { get; set; }

    /// <summary>The balance loss of the last training forward (a scalar with grad), or null.</summary>
    public Tensor? LastBalanceLoss { get; private set; }

    public MoeLayer(DeepseekV3Config c, Generator gen, Device? device = null)
    {
        _c = c;
        Gate = RegisterModule("gate", new MoeGate(c, gen, device));
        Experts = RegisterModule("experts", new ModuleList<SwiGluMlp>());
        for (int e = 0; e < c.NRoutedExperts; e++) Experts.Add(new SwiGluMlp(c.HiddenSize, c.MoeIntermediateSize, gen, device));
        if (c.NSharedExperts > 0)
            SharedExperts = RegisterModule("shared_experts", new SwiGluMlp(c.HiddenSize, c.MoeIntermediateSize * c.NSharedExperts, gen, device));
        LastLoad = new long[c.NRoutedExperts];
        AccumulatedLoad = new long[c.NRoutedExperts];
        _gateWeights = Experts.Select(m => (Tensor)m.GateProj.Weight).ToArray();
        _upWeights = Experts.Select(m => (Tensor)m.UpProj.Weight).ToArray();
        _downWeights = Experts.Select(m => (Tensor)m.DownProj.Weight).ToArray();
    }

    // The experts' weights in expert order, for the grouped GEMMs (the parameters themselves, not copies).
    private readonly Tensor[] _gateWeights, _upWeights, _downWeights;

    public void ResetLoad() => Array.Clear(AccumulatedLoad);

    /// <summary>x: [B, T, hidden] → [B, T, hidden].</summary>
    public override Tensor Forward(Tensor x)
    {
        int b = x.Shape[0], t = x.Shape[1], d = x.Shape[2];
        int n = b * t;
        var flat = x.Reshape(n, d);
        var routing = Gate.Route(flat);
        int k = routing.TopK, e = routing.Experts;

        // The token-slots, counting-sorted by expert on the device; only the [E + 1] offsets come back, to
        // size the expert batches (and for the load statistics).
        var (offsets, slotOrder, slotPosition) = Functional.MoePermute(routing.Indices, e);
        slotOrder.Dispose();
        var load = new long[e];
        for (int i = 0; i < e; i++)
        {
            load[i] = offsets[i + 1] - offsets[i];
            AccumulatedLoad[i] += load[i];
        }
        LastLoad = load;

        // xs: [n·k, d], token rows in expert order; each expert's rows are contiguous and go through its
        // three GEMMs in place (no padding, no stacked weights); the outputs come back to token order summed
        // with the routing weights. Each step is one differentiable op with its own backward.
        var xs = Functional.MoeDispatch(flat, slotPosition, k);
        var ys = Functional.GroupedSwiGlu(xs, offsets, _gateWeights, _upWeights, _downWeights);
        var routed = Functional.MoeCombine(ys, slotPosition, routing.Weights);     // [n, d]
        slotPosition.Dispose(); // the nodes that use it hold their own reference
        if (SharedExperts != null) routed = routed + SharedExperts.Forward(flat);

        LastBalanceLoss = IsTraining && BalanceLossAlpha > 0 && Autograd.GradMode.IsEnabled ? BalanceLoss(routing, b, t) : null;
        return routed.View(b, t, d);
    }

    /// <summary>
    /// L = α · mean over sequences of Σ_i f_i·P_i, with f_i = E/(k·T)·(times expert i was chosen in the
    /// sequence) (a constant) and P_i = mean_t s_{i,t}/Σ_j s_{j,t} (unbiased affinities, differentiable).
    /// </summary>
    private Tensor BalanceLoss(Routing r, int b, int t)
    {
        int e = r.Experts, k = r.TopK;
        // The per-sequence counts need the ids on the host: a read-back only when the loss is on.
        var indices = r.Indices.ToInt64Array();
        var f = new float[b * e];
        for (int s = 0; s < b * t * k; s++)
        {
            int seq = s / (t * k);
            f[seq * e + indices[s]] += (float)e / (k * t);
        }
        var sn = r.Scores / r.Scores.Sum(1, keepDim: true);                   // [n, E]
        var p = sn.View(b, t, e).Mean(1);                                      // [b, E]
        var ft = Tensor.FromArray(f, [b, e], r.Scores.Device);
        return (p * ft).Sum(1).Mean() * BalanceLossAlpha;
    }

    /// <summary>
    /// The auxiliary-loss-free update: every expert's bias moves by γ toward balance,
    /// b_i += γ·sign(mean load − load_i), over the load accumulated since the last reset (which it resets).
    /// </summary>
    public void UpdateBias(float gamma)
    {
        Gate.StepBiasTowardBalance(gamma, AccumulatedLoad);
        ResetLoad();
    }
}
