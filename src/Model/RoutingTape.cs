namespace NativeReasoner.Model;

/// <summary>What a MoE gate does with a <see cref="RoutingTape"/> attached.</summary>
public enum RoutingTapeMode
{
    /// <summary>Route as usual and record each forward's chosen experts.</summary>
    Record,
    /// <summary>
    /// Use the recorded experts instead of selecting (weights still from the current router); note the router's own
    /// choice.
    /// </summary>
    Replay,
    /// <summary>Route as usual; note the choice for comparison with the recording.</summary>
    Observe,
}

/// <summary>
/// Routing replay for MoE RL (R2 of "Rollout Routing Replay", arXiv 2510.11370; GSPO, arXiv 2507.18071, calls
/// it Routing Replay): the experts every MoE layer chose for every token in a recording pass are replayed in
/// later passes over the same token batches, so the update optimises the same expert paths that produced
/// the rollout. Replay keeps the expert set and its order; the routing weights are recomputed from the
/// current router's scores at those experts, so the gate still gets gradients.
/// <para>
/// Passes are sequences of forwards: forward f of a pass meets forward f of the recording (the caller runs
/// the same batches in the same order and calls <see cref="Rewind"/> before each pass). Entries are
/// per MoE layer ordinal (0 = the first MoE layer), so a second model with the same layout (the frozen
/// reference) can replay the policy's recording. Each forward with a tape attached copies its expert ids
/// (N·k integers per MoE layer) to the host; without a tape the gate is unchanged.
/// </para>
/// </summary>
public sealed class RoutingTape
{
    // layer → forward → expert ids [N·k] (token-major, slot order as the router ranked them).
    private readonly Dictionary<int, List<int[]>> _recorded = [];
    private readonly Dictionary<int, List<int[]>> _observed = [];
    private readonly Dictionary<int, int> _cursor = [];

    public RoutingTapeMode Mode { get; set; } = RoutingTapeMode.Record;

    /// <summary>MoE layers seen so far (recorded or observed), ascending.</summary>
    public IReadOnlyList<int> Layers => _recorded.Keys.Union(_observed.Keys).Order().ToArray();

    /// <summary>Starts a pass: the next forward of every layer is forward 0 again.</summary>
    public void Rewind() => _cursor.Clear();

    /// <summary>
    /// Called by a gate with its own selection, int32 [N, k]: returns the indices to route with — the given
    /// ones (record / observe) or a new tensor with the recorded ones (replay).
    /// </summary>
    public Tensor Apply(int layer, Tensor chosen)
    {
        if (chosen.Rank != 2)
            throw new ArgumentException(
                $"routing tape: expert ids must be [N, k], got {Tensor.FormatShape(chosen.Shape)}");
        int forward = _cursor.GetValueOrDefault(layer);
        _cursor[layer] = forward + 1;
        var ids = Array.ConvertAll(chosen.ToInt64Array(), v => (int)v);
        if (Mode == RoutingTapeMode.Record)
        {
            Put(_recorded, layer, forward, ids);
            return chosen;
        }
        Put(_observed, layer, forward, ids);
        if (Mode == RoutingTapeMode.Observe) return chosen;
        var rec = Recorded(layer, forward);
        if (rec.Length != ids.Length)
            throw new InvalidOperationException(
                $"routing replay: MoE layer {layer}, forward {forward} routes {ids.Length} token-slots, "
                + $"the recording has {rec.Length} (passes must run the same batches)");
        return Tensor.FromArray(rec.AsSpan(), chosen.Shape, chosen.Device);
    }

    /// <summary>The recorded expert ids of one layer's forward [N·k].</summary>
    public int[] Recorded(int layer, int forward) =>
        _recorded.TryGetValue(layer, out var l) && forward < l.Count ? l[forward]
            : throw new InvalidOperationException(
                $"routing replay: nothing recorded for MoE layer {layer}, forward {forward}");

    /// <summary>The router's own choice in the last replay/observe pass [N·k], or null.</summary>
    public int[]? Observed(int layer, int forward) =>
        _observed.TryGetValue(layer, out var l) && forward < l.Count ? l[forward] : null;

    /// <summary>
    /// Router shift of one layer: the share of counted tokens whose expert SET (order ignored) differs between the
    /// recording and the last replay/observe pass. <paramref name="counted"/>(forward, token) picks the tokens
    /// (e.g. completion tokens only). NaN when no token was counted.
    /// </summary>
    public double Shift(int layer, int k, Func<int, int, bool> counted)
    {
        if (!_recorded.TryGetValue(layer, out var rec) || !_observed.TryGetValue(layer, out var obs)) return double.NaN;
        long total = 0, moved = 0;
        var a = new int[k];
        var b = new int[k];
        for (int f = 0; f < Math.Min(rec.Count, obs.Count); f++)
        {
            int n = Math.Min(rec[f].Length, obs[f].Length) / k;
            for (int t = 0; t < n; t++)
            {
                if (!counted(f, t)) continue;
                Array.Copy(rec[f], t * k, a, 0, k);
                Array.Copy(obs[f], t * k, b, 0, k);
                Array.Sort(a);
                Array.Sort(b);
                total++;
                if (!a.AsSpan().SequenceEqual(b)) moved++;
            }
        }
        return total == 0 ? double.NaN : (double)moved / total;
    }

    private static void Put(Dictionary<int, List<int[]>> store, int layer, int forward, int[] ids)
    {
        if (!store.TryGetValue(layer, out var list)) store[layer] = list = [];
        if (forward < list.Count) list[forward] = ids;
        else if (forward == list.Count) list.Add(ids);
        else
            throw new InvalidOperationException(
                $"routing tape: MoE layer {layer} skipped to forward {forward} (has {list.Count})");
    }
}
