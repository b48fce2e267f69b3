using NativeReasoner.Nn;

namespace NativeReasoner.Model.Dense;

/// <summary>
/// The sparse MLP of Qwen3-MoE (HF's Qwen3MoeSparseMoeBlock): router logits = gate x; softmax over all experts;
/// the top-k experts of each token weighted by their softmax scores, renormalised to sum 1 only with
/// norm_topk_prob; no shared expert. Experts are SwiGLU MLPs held one by one (mlp.experts.{e}.*_proj.weight);
/// checkpoints with fused experts load into them through <see cref="FusedExpertWeights"/>.
/// The routed experts run grouped by expert with the same ops as the DeepSeek MoE block (one group, no bias).
/// </summary>
public sealed class SparseMoeBlock : Module
{
    private readonly int _k;
    private readonly bool _normalize;
    private readonly Tensor[] _gateWeights, _upWeights, _downWeights;

    /// <summary>mlp.gate: [E, hidden], no bias.</summary>
    public Linear Gate { get; }
    public ModuleList<SwiGluMlp> Experts { get; }

    public SparseMoeBlock(DenseConfig c, Generator gen, Device? device = null)
    {
        _k = c.NumExpertsPerTok;
        // One weight divided by itself is 1 whether or not it is normalised (and its gradient 0 either way).
        _normalize = c.NormTopkProb && _k > 1;
        Gate = RegisterModule("gate", new Linear(c.HiddenSize, c.NumExperts, false, gen, device));
        Experts = RegisterModule("experts", new ModuleList<SwiGluMlp>());
        for (int e = 0; e < c.NumExperts; e++)
            Experts.Add(new SwiGluMlp(c.HiddenSize, c.MoeIntermediateSize, gen, device));
        _gateWeights = Experts.Select(m => (Tensor)m.GateProj.Weight).ToArray();
        _upWeights = Experts.Select(m => (Tensor)m.UpProj.Weight).ToArray();
        _downWeights = Experts.Select(m => (Tensor)m.DownProj.Weight).ToArray();
    }

    /// <summary>x: [B, T, hidden] → [B, T, hidden].</summary>
    public override Tensor Forward(Tensor x)
    {
        int b = x.Shape[0], t = x.Shape[1], d = x.Shape[2];
        int n = b * t, experts = Experts.Count;
        var flat = x.Reshape(n, d);
        var scores = Tensor.Linear(flat, Gate.Weight).Softmax(-1);                                     // [n, E]
        var (indices, weights) = Functional.MoeRoute(scores, null, 1, 1, _k, useBias: false, _normalize, 1f);
        if (Autograd.GradMode.IsEnabled && scores.RequiresGrad)
        {
            // The selection is discrete; the gradient reaches the gate through the chosen experts' scores.
            weights.Dispose();
            weights = Functional.MoeGatherScores(scores, indices);                                    // [n, k]
            if (_normalize) weights = weights / weights.Sum(1, keepDim: true);
        }
        var (offsets, slotOrder, slotPosition) = Functional.MoePermute(indices, experts);
        slotOrder.Dispose();
        var xs = Functional.MoeDispatch(flat, slotPosition, _k);                                        // [n·k, d]
        var ys = Functional.GroupedSwiGlu(xs, offsets, _gateWeights, _upWeights, _downWeights);
        var routed = Functional.MoeCombine(ys, slotPosition, weights);                                  // [n, d]
        slotPosition.Dispose(); // the nodes that use it hold their own reference
        return routed.View(b, t, d);
    }
}
