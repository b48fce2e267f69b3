using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// Routing replay on the tiny DeepSeek-V3 MoE: after a parameter change that moves the router, a replayed
/// forward routes every token exactly as the recording did, while an observing forward (no replay) sees the shift.
/// </summary>
public class RoutingReplayTests
{
    // Two MoE layers (layer 0 stays dense), 8 experts, top-2.
    private static DeepseekV3Config Config(int vocab) =>
        DeepseekV3Config.Preset("tiny") with { NumHiddenLayers = 3, VocabSize = vocab };

    private static long[] Histogram(int[] ids, int experts)
    {
        var h = new long[experts];
        foreach (var e in ids) h[e]++;
        return h;
    }

    [Fact]
    public void Replay_RoutesAsRecorded_AfterTheRouterMoved_ObserveSeesTheShift()
    {
        var cfg = Config(64);
        using var model = new DeepseekV3ForCausalLM(cfg, new Generator(21));
        var rng = new Random(4);
        var ids = Enumerable.Range(0, 2 * 24).Select(_ => (long)rng.Next(64)).ToArray();
        var tape = new RoutingTape();
        model.AttachRoutingTape(tape);
        using (var scope = new TensorScope())
        using (Tensor.NoGrad()) model.Forward(Tensor.FromArray(ids, 2, 24));
        Assert.Equal(new[] { 0, 1 }, tape.Layers);

        // Move every router: its weight scaled and overwritten with other random values.
        var moeLayers = model.MoeLayers.ToArray();
        using (Tensor.NoGrad())
        using (var scope = new TensorScope())
            foreach (var m in moeLayers)
            {
                var w = m.Gate.Weight;
                var noise = Enumerable.Range(0, w.Shape[0] * w.Shape[1]).Select(_ => (float)(rng.NextDouble() - 0.5))
                    .ToArray();
                w.CopyFrom_(Tensor.FromArray(noise, w.Shape[0], w.Shape[1]));
            }

        Func<int, int, bool> all = (_, _) => true;
        tape.Mode = RoutingTapeMode.Observe;
        tape.Rewind();
        using (var scope = new TensorScope())
        using (Tensor.NoGrad()) model.Forward(Tensor.FromArray(ids, 2, 24));
        for (int layer = 0; layer < 2; layer++)
        {
            double shift = tape.Shift(layer, cfg.NumExpertsPerTok, all);
            Assert.True(shift > 0.2, $"layer {layer}: the new router should choose other experts for many tokens, "
                + $"shift {shift}");
            // Without replay the layer routed by its own (new) choice.
            Assert.Equal(Histogram(tape.Observed(layer, 0)!, cfg.NRoutedExperts), moeLayers[layer].LastLoad);
        }

        // Replay with grad: the expert load is exactly the recording's, and the gate still gets a gradient.
        tape.Mode = RoutingTapeMode.Replay;
        tape.Rewind();
        using (var scope = new TensorScope())
        {
            var logits = model.Forward(Tensor.FromArray(ids, 2, 24));
            logits.Sum().Backward();
        }
        for (int layer = 0; layer < 2; layer++)
        {
            Assert.Equal(Histogram(tape.Recorded(layer, 0), cfg.NRoutedExperts), moeLayers[layer].LastLoad);
            Assert.NotEqual(Histogram(tape.Observed(layer, 0)!, cfg.NRoutedExperts), moeLayers[layer].LastLoad);
            var g = moeLayers[layer].Gate.Weight.Grad;
            Assert.NotNull(g);
            Assert.Contains(g!.ToArray(), v => v != 0);
            Assert.All(g.ToArray(), v => Assert.True(float.IsFinite(v)));
        }
        model.AttachRoutingTape(null);
    }

    [Fact]
    public void Replay_ExpertOrderAndSetAreTheRecording()
    {
        // A tape fed by hand: replay hands back exactly the recorded ids, in their order, whatever the router picks.
        var tape = new RoutingTape();
        using var scope = new TensorScope();
        tape.Apply(0, Tensor.FromArray(new[] { 3, 1, 0, 2 }.AsSpan(), [2, 2]));
        tape.Mode = RoutingTapeMode.Replay;
        tape.Rewind();
        var replayed = tape.Apply(0, Tensor.FromArray(new[] { 1, 3, 5, 6 }.AsSpan(), [2, 2]));
        Assert.Equal(new long[] { 3, 1, 0, 2 }, replayed.ToInt64Array());
        // Token 0 has the same set {1, 3} in another order: not a shift; token 1 moved.
        Assert.Equal(0.5, tape.Shift(0, 2, (_, _) => true));
        tape.Rewind();
        var ex = Assert.Throws<InvalidOperationException>(
            () => tape.Apply(0, Tensor.FromArray(new[] { 1, 2 }.AsSpan(), [1, 2])));
        Assert.Contains("routing replay", ex.Message);
    }

    [Fact]
    public void Trainer_LogsRouterShift_WithAndWithoutReplay()
    {
        var tok = new CharTokenizer();
        var task = new ArithmeticTask();
        foreach (bool replay in new[] { false, true })
        {
            using var model = new DeepseekV3ForCausalLM(Config(tok.VocabSize), new Generator(5));
            var policy = new CausalLMPolicy(model);
            var config = new GrpoConfig
            {
                NumGenerations = 4, PromptsPerStep = 1, NumIterations = 2, MaxCompletionLength = 6,
                LossType = LossType.Grpo,
                LearningRate = 0.05f, Seed = 2, RoutingReplay = replay,
            };
            var sevens = new RewardSet().Add(new SevensReward());
            using var trainer = new GrpoTrainer(policy, null, tok, task, sevens, PromptTemplate.Default, config);
            var history = Enumerable.Range(0, 3).Select(_ => trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value))
                .ToArray();
            Assert.All(history, m =>
            {
                string[] keys = ["router_shift/mean", "router_shift/moe_layer_0", "router_shift/moe_layer_1"];
                foreach (var key in keys)
                    Assert.True(m.ContainsKey(key), $"metrics lack {key}");
                Assert.InRange(m["router_shift/mean"], 0, 1);
                Assert.True(double.IsFinite(m["loss"]));
            });
            // A large step moves the routers between μ-iterations: the second pass's router picks other experts.
            Assert.Contains(history, m => m["router_shift/mean"] > 0);
            Assert.All(model.MoeLayers, m => Assert.Null(m.Gate.Tape));
        }
    }

    [Fact]
    public void Trainer_RoutingReplayOnAModelWithoutDeepseekMoe_IsAClearError()
    {
        var tok = new CharTokenizer();
        var dense = Config(tok.VocabSize) with { FirstKDenseReplace = 2, NumHiddenLayers = 2 };
        using var model = new DeepseekV3ForCausalLM(dense, new Generator(5));
        var config = new GrpoConfig { NumGenerations = 2, PromptsPerStep = 1, MaxCompletionLength = 4, RoutingReplay = true };
        var ex = Assert.Throws<ArgumentException>(() => new GrpoTrainer(new CausalLMPolicy(model), null, tok,
            new ArithmeticTask(), new RewardSet().Add(new SevensReward()), PromptTemplate.Default, config));
        Assert.Contains("routing_replay needs", ex.Message);
    }
}
