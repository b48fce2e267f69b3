// Source: expert parallelism for DeepSeekMoE (DeepSeek-V3 technical report, arXiv:2412.19437 §3.2 and §2.1.2;
//         GShard, arXiv:2006.16668): the routed experts are split over the ranks, tokens travel to the ranks of
//         their experts by all-to-all and come back the same way; the layer it distributes is Model/MoeLayer.cs.
using NativeReasoner.Model;
using NativeReasoner.Nn;

namespace NativeReasoner.Distributed;

/// <summary>
/// The DeepSeekMoE block with its routed experts spread over an expert-parallel group: rank r holds experts
/// [r·E/P, (r+1)·E/P). Each rank routes its own tokens with a replica of the gate, sends every token-slot to the
/// rank holding its expert (AllToAllV), runs its local experts on the rows it received, sends the outputs back
/// (the reverse AllToAllV) and combines them with the routing weights; the shared experts run on the local
/// tokens. Backward runs the exchanges in reverse through autograd, so every rank must run forward and backward
/// in step. The expert loads are gathered from every rank, so <see cref="UpdateBias"/> moves every rank's bias by
/// the same, global load and the replicated gates stay identical.
/// <para>The gate and shared experts are replicas: their gradients hold this rank's tokens only and must be summed
/// over the data-parallel ranks (the local experts' gradients already hold every rank's tokens, and must not
/// be).</para>
/// </summary>
public sealed class ExpertParallelMoeLayer : Module
{
    private readonly DeepseekV3Config _c;
    private readonly Tensor[] _gateWeights, _upWeights, _downWeights;

    public IProcessGroup Group { get; }

    public MoeGate Gate { get; }

    /// <summary>The experts this rank holds: local expert j is global expert <see cref="FirstExpert"/> + j.</summary>
    public ModuleList<SwiGluMlp> LocalExperts { get; }

    public SwiGluMlp? SharedExperts { get; }

    public int FirstExpert { get; }

    public int LocalExpertCount { get; }

    /// <summary>Tokens routed to each expert by all ranks together in the last forward ([E]).</summary>
    public long[] LastLoad { get; private set; }

    /// <summary>The global load summed over forwards since the last <see cref="ResetLoad"/> ([E]).</summary>
    public long[] AccumulatedLoad { get; }

    /// <summary>Bytes this rank sent to other ranks for this layer (reset it once per step to read a step).</summary>
    public CommunicationCounter Communication { get; } = new();

    /// <summary>
    /// Keeps <paramref name="layer"/>'s gate and shared experts and the experts this rank owns (the same
    /// parameters, not copies), e.g. from a checkpoint loaded whole. The other experts are no longer used.
    /// </summary>
    public static ExpertParallelMoeLayer FromLayer(MoeLayer layer, DeepseekV3Config c, IProcessGroup group)
    {
        var (first, count) = ExpertRange(c, group);
        return new ExpertParallelMoeLayer(c, group, layer.Gate,
            Enumerable.Range(first, count).Select(e => layer.Experts[e]).ToList(), layer.SharedExperts);
    }

    /// <summary>A freshly initialised layer that allocates only this rank's experts.</summary>
    public ExpertParallelMoeLayer(DeepseekV3Config c, IProcessGroup group, Generator gen, Device? device = null)
        : this(c, group, new MoeGate(c, gen, device), NewExperts(c, group, gen, device),
            c.NSharedExperts > 0
                ? new SwiGluMlp(c.HiddenSize, c.MoeIntermediateSize * c.NSharedExperts, gen, device)
                : null)
    {
    }

    private ExpertParallelMoeLayer(DeepseekV3Config c, IProcessGroup group, MoeGate gate,
        IReadOnlyList<SwiGluMlp> localExperts, SwiGluMlp? shared)
    {
        _c = c;
        Group = group;
        (FirstExpert, LocalExpertCount) = ExpertRange(c, group);
        Gate = RegisterModule("gate", gate);
        LocalExperts = RegisterModule("experts", new ModuleList<SwiGluMlp>());
        foreach (var expert in localExperts) LocalExperts.Add(expert);
        if (shared != null) SharedExperts = RegisterModule("shared_experts", shared);
        LastLoad = new long[c.NRoutedExperts];
        AccumulatedLoad = new long[c.NRoutedExperts];
        _gateWeights = LocalExperts.Select(m => (Tensor)m.GateProj.Weight).ToArray();
        _upWeights = LocalExperts.Select(m => (Tensor)m.UpProj.Weight).ToArray();
        _downWeights = LocalExperts.Select(m => (Tensor)m.DownProj.Weight).ToArray();
    }

    /// <summary>The experts rank <see cref="IProcessGroup.Rank"/> holds; refuses a group that does not divide
    /// them, before anything is allocated or exchanged.</summary>
    public static (int First, int Count) ExpertRange(DeepseekV3Config c, IProcessGroup group)
    {
        int e = c.NRoutedExperts, p = group.Size;
        if (e <= 0)
            throw new ModelConfigException($"expert parallelism: {c.ModelType} has n_routed_experts = {e}; " +
                "it needs routed experts to split");
        if (e % p != 0)
            throw new ModelConfigException($"expert parallelism: n_routed_experts = {e} does not split over " +
                $"{p} ranks; the expert-parallel group size must divide it (one of " +
                $"{string.Join(", ", Enumerable.Range(1, e).Where(d => e % d == 0))})");
        return (group.Rank * (e / p), e / p);
    }

    private static List<SwiGluMlp> NewExperts(DeepseekV3Config c, IProcessGroup group, Generator gen, Device? device)
    {
        var (_, count) = ExpertRange(c, group);
        return Enumerable.Range(0, count)
            .Select(_ => new SwiGluMlp(c.HiddenSize, c.MoeIntermediateSize, gen, device)).ToList();
    }

    public void ResetLoad() => Array.Clear(AccumulatedLoad);

    /// <summary>x: [B, T, hidden] (this rank's tokens) → [B, T, hidden].</summary>
    public override Tensor Forward(Tensor x)
    {
        int b = x.Shape[0], t = x.Shape[1], d = x.Shape[2];
        int n = b * t, p = Group.Size, me = Group.Rank, local = LocalExpertCount;
        var flat = x.Reshape(n, d);
        var routing = Gate.Route(flat);
        int k = routing.TopK, e = routing.Experts;

        // The local token-slots in global expert order; the slots of rank r's experts are one contiguous block.
        var (offsets, slotOrder, slotPosition) = Functional.MoePermute(routing.Indices, e);
        slotOrder.Dispose();

        // loads: [P, E], every rank's per-expert slot counts: they size the exchanges and are the global load.
        var loads = GatherLoads(offsets, e);
        var globalLoad = new long[e];
        for (int r = 0; r < p; r++)
            for (int i = 0; i < e; i++) globalLoad[i] += loads[r, i];
        for (int i = 0; i < e; i++) AccumulatedLoad[i] += globalLoad[i];
        LastLoad = globalLoad;

        var sendCounts = new int[p];
        var recvCounts = new int[p];
        for (int r = 0; r < p; r++)
        {
            sendCounts[r] = offsets[(r + 1) * local] - offsets[r * local];
            for (int j = 0; j < local; j++) recvCounts[r] += loads[r, FirstExpert + j];
        }

        var xs = Functional.MoeDispatch(flat, slotPosition, k);                   // [n·k, d], global expert order
        var received = DistributedFunctional.AllToAllV(Group, xs, sendCounts, recvCounts, Communication);
        // received: [R, d] ordered by (source rank, local expert); the experts want (local expert, source rank).
        var (byExpert, bySource, expertOffsets) = ExpertMajorOrder(loads, recvCounts.Sum(), x.Device);
        Tensor ys;
        using (byExpert)
        using (bySource)
        {
            var grouped = received.IndexSelect(0, byExpert);                         // [R, d]
            var outputs = Functional.GroupedSwiGlu(grouped, expertOffsets, _gateWeights, _upWeights, _downWeights);
            ys = outputs.IndexSelect(0, bySource);                                   // [R, d], source order
        }
        var back = DistributedFunctional.AllToAllV(Group, ys, recvCounts, sendCounts, Communication);  // [n·k, d]
        var routed = Functional.MoeCombine(back, slotPosition, routing.Weights);     // [n, d]
        slotPosition.Dispose(); // the nodes that use it hold their own reference
        if (SharedExperts != null) routed = routed + SharedExperts.Forward(flat);
        return routed.View(b, t, d);
    }

    // Every rank's [E] slot counts, all-gathered: [P, E].
    private int[,] GatherLoads(int[] offsets, int e)
    {
        int p = Group.Size;
        var mine = new int[e];
        for (int i = 0; i < e; i++) mine[i] = offsets[i + 1] - offsets[i];
        using var send = Tensor.FromArray(mine, [1, e], Device.Cpu);
        using var all = Tensor.Zeros([p, e], DType.Int32, Device.Cpu);
        Group.AllGather(send, all);
        Communication.AddControl((long)(p - 1) * e * sizeof(int));
        var values = all.ToInt64Array();
        var loads = new int[p, e];
        for (int r = 0; r < p; r++)
            for (int i = 0; i < e; i++) loads[r, i] = (int)values[r * e + i];
        return loads;
    }

    // The row permutation from (source rank, local expert) order to (local expert, source rank) order and back,
    // and the expert offsets [local + 1] of the expert-major order.
    private (Tensor ByExpert, Tensor BySource, int[] Offsets) ExpertMajorOrder(int[,] loads, int rows, Device device)
    {
        int p = Group.Size, local = LocalExpertCount;
        // start[r, j]: where block (r, j) begins in the received (source-major) rows.
        var start = new int[p, local];
        int at = 0;
        for (int r = 0; r < p; r++)
            for (int j = 0; j < local; j++)
            {
                start[r, j] = at;
                at += loads[r, FirstExpert + j];
            }
        var byExpert = new long[rows];
        var bySource = new long[rows];
        var offsets = new int[local + 1];
        int next = 0;
        for (int j = 0; j < local; j++)
        {
            for (int r = 0; r < p; r++)
                for (int i = 0; i < loads[r, FirstExpert + j]; i++)
                {
                    byExpert[next] = start[r, j] + i;
                    bySource[start[r, j] + i] = next;
                    next++;
                }
            offsets[j + 1] = next;
        }
        return (Tensor.FromArray(byExpert, [rows], device), Tensor.FromArray(bySource, [rows], device), offsets);
    }

    /// <summary>
    /// The auxiliary-loss-free update on the global load: b_i += γ·sign(mean load − load_i) over the load of
    /// all ranks accumulated since the last reset (which it resets). Every rank computes the same step.
    /// </summary>
    public void UpdateBias(float gamma)
    {
        Gate.StepBiasTowardBalance(gamma, AccumulatedLoad);
        ResetLoad();
    }
}
