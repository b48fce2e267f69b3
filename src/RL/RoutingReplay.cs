// Source: routing replay for MoE RL (verl R2/R3; DeepSeek-V3.2 "keep routing"); GSPO (arXiv:2507.18071) §5 on MoE.
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>
/// The GRPO side of MoE routing replay (see <see cref="RoutingTape"/>): which policies have routers, which
/// tokens of a rollout batch the router-shift metric counts, and the metric itself. The recording pass is a
/// no-grad forward of the rollout batch with the weights that sampled it (verl's R2: recorded at the old-policy
/// pass, not inside the KV-cached sampler — same weights and tokens, so the same choices up to rounding).
/// </summary>
public static class RoutingReplay
{
    /// <summary>
    /// The DeepSeek-V3 model behind <paramref name="policy"/> when it has MoE layers, else null (the other MoE
    /// families do not record routing yet).
    /// </summary>
    public static DeepseekV3ForCausalLM? MoeModel(IPolicy? policy) =>
        policy is CausalLMPolicy { Model: DeepseekV3ForCausalLM d } && d.MoeLayers.Any() ? d : null;

    /// <summary>Detaches <paramref name="model"/>'s routing tape when disposed (nothing for a null model).</summary>
    public static IDisposable DetachOnDispose(DeepseekV3ForCausalLM? model) => new Detacher(model);

    private sealed class Detacher(DeepseekV3ForCausalLM? model) : IDisposable
    {
        public void Dispose() => model?.AttachRoutingTape(null);
    }

    /// <summary>
    /// Completion tokens in the layout of <see cref="RolloutBatch.LogProbs"/>: forward g runs group g as
    /// [G, P + Cg] (Cg its longest completion); token j·(P + Cg) + P + t is completion token t of sample j.
    /// </summary>
    public static Func<int, int, bool> CompletionTokens(RolloutBatch batch)
    {
        int G = batch.NumGenerations;
        return (g, token) =>
        {
            int P = batch.Prompts[g].Length;
            int Cg = Math.Max(1, Enumerable.Range(0, G).Max(j => batch.Samples[g * G + j].Tokens.Length));
            int j = token / (P + Cg), pos = token % (P + Cg) - P;
            return j < G && pos >= 0 && pos < batch.Samples[g * G + j].Tokens.Length;
        };
    }

    /// <summary>
    /// router_shift/moe_layer_L per MoE layer (L = 0: the first MoE layer) and router_shift/mean: the share of
    /// completion tokens whose expert set in the last replay/observe pass differs from the recording (with
    /// replay: what the router would have changed).
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, double>> ShiftMetrics(RoutingTape tape, int topK,
        RolloutBatch batch)
    {
        var counted = CompletionTokens(batch);
        var result = new List<KeyValuePair<string, double>>();
        var shifts = new List<double>();
        foreach (int layer in tape.Layers)
        {
            double s = tape.Shift(layer, topK, counted);
            if (double.IsNaN(s)) continue;
            shifts.Add(s);
            result.Add(new($"router_shift/moe_layer_{layer}", s));
        }
        if (shifts.Count > 0) result.Insert(0, new("router_shift/mean", shifts.Average()));
        return result;
    }
}
