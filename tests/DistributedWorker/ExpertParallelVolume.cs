using NativeReasoner.Distributed;
using NativeReasoner.Model;

namespace NativeReasoner.DistributedWorker;

/// <summary>
/// The figures of docs/scaling.md: one bench-tiny MoE layer (192 experts), expert-parallel over the group, forward and backward
/// on 8 sequences × 64 tokens per rank; prints this rank's counted bytes, its matmul FLOPs (from the slots its
/// experts ran) and the bench-tiny model's parameter bytes (what data parallelism all-reduces per step).
/// </summary>
internal static class ExpertParallelVolume
{
    public static List<string> Run(IProcessGroup g)
    {
        using var scope = new TensorScope();
        // bench-tiny with 192 routed experts instead of 256, so 1, 2 and 3 ranks all divide them (8 groups of 24).
        var c = (DeepseekV3Config.Preset("bench-tiny") with { NRoutedExperts = 192 }).Validate();
        using var layer = new ExpertParallelMoeLayer(c, g, new Generator(11));
        layer.Train();
        const int sequences = 8, tokens = 64;
        var x = Tensor.Randn([sequences, tokens, c.HiddenSize], new Generator((ulong)(100 + g.Rank))).RequiresGrad_();
        var y = layer.Forward(x);
        y.Square().Sum().Backward();
        // Slots this rank's experts ran: the global load of its experts.
        long slots = layer.LastLoad.Skip(layer.FirstExpert).Take(layer.LocalExpertCount).Sum();
        long n = sequences * tokens, d = c.HiddenSize;
        long expertForward = slots * 3 * 2 * d * c.MoeIntermediateSize;
        long denseForward = n * (2 * d * c.NRoutedExperts + 3 * 2 * d * c.MoeIntermediateSize * c.NSharedExperts);
        // Backward is two GEMMs per forward GEMM (input and weight gradients).
        long flops = 3 * (expertForward + denseForward);
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        Console.WriteLine($"rank {g.Rank} of {g.Size}: bench-tiny MoE layer, {n} tokens/rank: all-to-all bytes " +
            $"{layer.Communication.AllToAllBytes}, load bytes {layer.Communication.ControlBytes}, expert slots {slots}, " +
            $"fwd+bwd FLOPs {flops}; model parameters {model.ParameterCount} ({4 * model.ParameterCount} fp32 bytes)");
        return [];
    }
}
