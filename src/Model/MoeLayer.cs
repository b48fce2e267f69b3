using NativeReasoner.Kernels;
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// DeepSeekMoE block: y = Σ_j w_j · Expert_{e_j}(x) + SharedExperts(x). The routed experts run grouped by
/// expert: the token-slots are counting-sorted by expert, the tokens of each expert are gathered into a
/// contiguous batch, experts of similar load are run together as batched GEMMs over their stacked
/// weights, and the outputs are gathered back into token-slot order and summed with the routing weights.
/// No per-token loop; the backward of each gather is the matching scatter-add.
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
        var sortedToken = new int[n * k];    // token of each sorted slot
        var slotToSorted = new int[n * k];   // token-slot n·k+j → its position in sorted order
        for (int s = 0; s < n * k; s++)
        {
            int pos = cursor[routing.Indices[s]]++;
            sortedToken[pos] = s / k;
            slotToSorted[s] = pos;
        }
        var load = Array.ConvertAll(counts, v => (long)v);
        LastLoad = load;
        for (int i = 0; i < e; i++) AccumulatedLoad[i] += load[i];

        if (!Autograd.GradMode.IsEnabled)
        {
            var yNoGrad = ExpertsNoGrad(flat, sortedToken, start, counts, n * k);
            var slotNoGrad = Array.ConvertAll(slotToSorted, v => (long)v);
            var perSlotNoGrad = yNoGrad.IndexSelect(0, Tensor.FromArray(slotNoGrad, [n * k], x.Device)).View(n, k, d);
            var routedNoGrad = (perSlotNoGrad * routing.Weights.Unsqueeze(-1)).Sum(1);
            if (SharedExperts != null) routedNoGrad = routedNoGrad + SharedExperts.Forward(flat);
            LastBalanceLoss = null;
            return routedNoGrad.View(b, t, d);
        }

        // Experts run in a few buckets of similar load: within a bucket the experts' weights are stacked
        // and every expert's tokens are padded to the bucket's largest count, so a bucket is three batched
        // GEMMs ([experts, rows, ·]). Buckets start a new one when the count halves, so padding at most
        // doubles the work. (Slicing one gathered tensor per expert instead would cost each expert a
        // full-size gradient in the backward.)
        var active = Enumerable.Range(0, e).Where(i => counts[i] > 0).OrderByDescending(i => counts[i]).ThenBy(i => i).ToArray();
        var rowOfSorted = new int[n * k];          // sorted position → row in the concatenated bucket outputs
        var flatZ = Tensor.Cat([flat, Tensor.Zeros([1, d], DType.Float32, x.Device)], 0); // row n = padding (zeros)
        var bucketOutputs = new List<Tensor>();
        int row0 = 0;
        for (int a = 0; a < active.Length;)
        {
            int cap = counts[active[a]];
            int end = a;
            while (end < active.Length && counts[active[end]] * 2 > cap) end++;
            int m = end - a;
            var gather = new long[m * cap];
            Array.Fill(gather, n);
            for (int j = 0; j < m; j++)
            {
                int ex = active[a + j];
                for (int r = 0; r < counts[ex]; r++)
                {
                    gather[j * cap + r] = sortedToken[start[ex] + r];
                    rowOfSorted[start[ex] + r] = row0 + j * cap + r;
                }
            }
            var xs = flatZ.IndexSelect(0, Tensor.FromArray(gather, [m * cap], x.Device)).View(m, cap, d);     // [m, cap, d]
            var bucket = active.AsSpan(a, m).ToArray();
            var wg = Stack(bucket, ex => Experts[ex].GateProj.Weight);                              // [m, I, d]
            var wu = Stack(bucket, ex => Experts[ex].UpProj.Weight);                                // [m, I, d]
            var wd = Stack(bucket, ex => Experts[ex].DownProj.Weight);                              // [m, d, I]
            var hsw = xs.MatMul(wg.Transpose(1, 2)).Silu() * xs.MatMul(wu.Transpose(1, 2));         // [m, cap, I]
            bucketOutputs.Add(hsw.MatMul(wd.Transpose(1, 2)).Reshape(m * cap, d));                  // [m·cap, d]
            row0 += m * cap;
            a = end;
        }
        var ys = bucketOutputs.Count == 1 ? bucketOutputs[0] : Tensor.Cat(bucketOutputs, 0);
        var slotRow = new long[n * k];
        for (int s = 0; s < n * k; s++) slotRow[s] = rowOfSorted[slotToSorted[s]];
        var perSlot = ys.IndexSelect(0, Tensor.FromArray(slotRow, [n * k], x.Device)).View(n, k, d);
        var routed = (perSlot * routing.Weights.Unsqueeze(-1)).Sum(1);             // [n, d]
        if (SharedExperts != null) routed = routed + SharedExperts.Forward(flat);

        LastBalanceLoss = IsTraining && BalanceLossAlpha > 0 ? BalanceLoss(routing, b, t) : null;
        return routed.View(b, t, d);
    }

    /// <summary>
    /// Inference path (no graph): the tokens are gathered once in expert order, then every expert's
    /// contiguous rows go through its three GEMMs directly on the parameters' memory — no stacking, no
    /// per-expert tensors. Returns the expert outputs in sorted order, [slots, d].
    /// </summary>
    private unsafe Tensor ExpertsNoGrad(Tensor flat, int[] sortedToken, int[] start, int[] counts, int slots)
    {
        int d = flat.Shape[1], inter = _c.MoeIntermediateSize;
        var xs = flat.IndexSelect(0, Tensor.FromArray(Array.ConvertAll(sortedToken, v => (long)v), [slots], flat.Device));  // [slots, d]
        var g = Tensor.Empty([slots, inter], DType.Float32, flat.Device);
        var u = Tensor.Empty([slots, inter], DType.Float32, flat.Device);
        var y = Tensor.Empty([slots, d], DType.Float32, flat.Device);
        var kern = flat.Device.Kernels;
        for (int ex = 0; ex < counts.Length; ex++)
        {
            int m = counts[ex];
            if (m == 0) continue;
            var mlp = Experts[ex];
            kern.Gemm(1, false, true, m, inter, d, 1f, xs.Data + (long)start[ex] * d, d, 0, mlp.GateProj.Weight.Data, d, 0, 0f, g.Data + (long)start[ex] * inter, inter, 0);
            kern.Gemm(1, false, true, m, inter, d, 1f, xs.Data + (long)start[ex] * d, d, 0, mlp.UpProj.Weight.Data, d, 0, 0f, u.Data + (long)start[ex] * inter, inter, 0);
        }
        var h = g.Silu() * u;                                                      // [slots, I]
        for (int ex = 0; ex < counts.Length; ex++)
        {
            int m = counts[ex];
            if (m == 0) continue;
            kern.Gemm(1, false, true, m, d, inter, 1f, h.Data + (long)start[ex] * inter, inter, 0, Experts[ex].DownProj.Weight.Data, inter, 0, 0f, y.Data + (long)start[ex] * d, d, 0);
        }
        return y;
    }

    private static Tensor Stack(int[] experts, Func<int, Tensor> weight) =>
        experts.Length == 1 ? weight(experts[0]).Unsqueeze(0) : Tensor.Stack(experts.Select(weight).ToList(), 0);

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
        var ft = Tensor.FromArray(f, [b, e], r.Scores.Device);
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
            var updated = Gate.ScoreCorrectionBias + Tensor.FromArray(delta, [delta.Length], Gate.ScoreCorrectionBias.Device);
            Gate.ScoreCorrectionBias.CopyFrom_(updated);
        }
        ResetLoad();
    }
}
