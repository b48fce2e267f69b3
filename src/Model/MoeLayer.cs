using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// DeepSeekMoE block: y = Σ_j w_j · Expert_{e_j}(x) + SharedExperts(x). The routed experts run grouped by
/// expert: the token-slots are counting-sorted by expert, the tokens are gathered once into that order
/// (one IndexSelect), each expert applies its SwiGLU to its contiguous batch, the outputs are gathered
/// back into token-slot order (the inverse permutation) and summed with the routing weights. No per-token
/// loop; the backward of each step is the matching scatter (IndexSelect's backward adds rows back).
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
    }

    public void ResetLoad() => Array.Clear(AccumulatedLoad);

    /// <summary>x: [B, T, hidden] → [B, T, hidden].</summary>
    public override Tensor Forward(Tensor x)
    {
        int b = x.Shape[0], t = x.Shape[1], d = x.Shape[2];
        int n = b * t;
        var flat = x.Reshape(n, d);
        var routing = Gate.Route(flat);
        int k = routing.TopK, e = routing.Experts;

        // Counting sort of the n·k token-slots by expert.
        var counts = new int[e];
        foreach (int ex in routing.Indices) counts[ex]++;
        var start = new int[e + 1];
        for (int i = 0; i < e; i++) start[i + 1] = start[i] + counts[i];
        var cursor = (int[])start.Clone();
        var sortedToken = new long[n * k];   // token of each sorted slot
        var slotToSorted = new long[n * k];  // token-slot n·k+j → its position in sorted order
        for (int s = 0; s < n * k; s++)
        {
            int pos = cursor[routing.Indices[s]]++;
            sortedToken[pos] = s / k;
            slotToSorted[s] = pos;
        }
        var load = Array.ConvertAll(counts, v => (long)v);
        LastLoad = load;
        for (int i = 0; i < e; i++) AccumulatedLoad[i] += load[i];

        var xs = flat.IndexSelect(0, Tensor.FromArray(sortedToken, [n * k]));   // [n·k, d], grouped by expert
        var outs = new List<Tensor>();
        for (int i = 0; i < e; i++)
            if (counts[i] > 0) outs.Add(Experts[i].Forward(xs.Narrow(0, start[i], counts[i])));
        var ys = outs.Count == 1 ? outs[0] : Tensor.Cat(outs, 0);                  // [n·k, d], sorted order
        var perSlot = ys.IndexSelect(0, Tensor.FromArray(slotToSorted, [n * k])).View(n, k, d);
        var routed = (perSlot * routing.Weights.Unsqueeze(-1)).Sum(1);             // [n, d]
        if (SharedExperts != null) routed = routed + SharedExperts.Forward(flat);

        LastBalanceLoss = IsTraining && BalanceLossAlpha > 0 ? BalanceLoss(routing, b, t) : null;
        return routed.View(b, t, d);
    }

    /// <summary>
    /// L = α · mean over sequences of Σ_i f_i·P_i, with f_i = E/(k·T)·(times expert i was chosen in the
    /// sequence) (a constant) and P_i = mean_t s_{i,t}/Σ_j s_{j,t} (unbiased affinities, differentiable).
    /// </summary>
    private Tensor BalanceLoss(Routing r, int b, int t)
    {
        int e = r.Experts, k = r.TopK;
        var f = new float[b * e];
        for (int s = 0; s < b * t * k; s++)
        {
            int seq = s / (t * k);
            f[seq * e + r.Indices[s]] += (float)e / (k * t);
        }
        var sn = r.Scores / r.Scores.Sum(1, keepDim: true);                   // [n, E]
        var p = sn.View(b, t, e).Mean(1);                                      // [b, E]
        var ft = Tensor.FromArray(f, [b, e]);
        return (p * ft).Sum(1).Mean() * BalanceLossAlpha;
    }

    /// <summary>
    /// The auxiliary-loss-free update: every expert's bias moves by γ toward balance,
    /// b_i += γ·sign(mean load − load_i), over the load accumulated since the last reset (which it resets).
    /// </summary>
    public void UpdateBias(float gamma)
    {
        double mean = AccumulatedLoad.Average();
        var delta = new float[AccumulatedLoad.Length];
        for (int i = 0; i < delta.Length; i++) delta[i] = gamma * Math.Sign(mean - AccumulatedLoad[i]);
        using (Tensor.NoGrad())
        using (var scope = new TensorScope())
        {
            var updated = Gate.ScoreCorrectionBias + Tensor.FromArray(delta, [delta.Length]);
            Gate.ScoreCorrectionBias.CopyFrom_(updated);
        }
        ResetLoad();
    }
}
