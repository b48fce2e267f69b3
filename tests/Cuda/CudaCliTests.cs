using System.Diagnostics;
using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.Tests.RL;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// The end-to-end commands on the emulated CUDA device: `nr generate`, `nr eval` and `nr train`
/// with `--device cuda:emu`, compared with `--device cpu` where the result is deterministic (greedy decoding of a
/// fixed model, the pre-training losses of the same initialisation), and the GRPO trainer's fused loss against its
/// composed loss on the device.
/// </summary>
public sealed class CudaCliTests(ITestOutputHelper output)
{
    private static string Temp(string what) => Path.Combine(Path.GetTempPath(), $"nr-{what}-" + Guid.NewGuid().ToString("N"));

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void GenerateAndEvalOnEmulatorMatchCpu() => GenerateAndEvalMatchCpu("cuda:emu");

    [CudaFact(CudaRuntimeKind.Gpu)]
    public void GenerateAndEvalOnGpuMatchCpu() => GenerateAndEvalMatchCpu("cuda");

    private void GenerateAndEvalMatchCpu(string cudaName)
    {
        var dir = GenerateEvalTests.ModelDir();
        try
        {
            var prompts = Path.Combine(dir, "prompts.jsonl");
            File.WriteAllLines(prompts, ["{\"prompt\": \"What is 2 + 3?\"}", "{\"prompt\": \"What is 17 * 4?\"}"]);
            var outputs = new Dictionary<string, (string[] Greedy, string[] Sampled, JsonElement Eval)>();
            foreach (var device in new[] { "cpu", cudaName })
            {
                var clock = Stopwatch.StartNew();
                string greedy = Path.Combine(dir, $"greedy-{device.Replace(':', '-')}.jsonl");
                string sampled = Path.Combine(dir, $"sampled-{device.Replace(':', '-')}.jsonl");
                string eval = Path.Combine(dir, $"eval-{device.Replace(':', '-')}.json");
                Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompts", prompts, "--out", greedy, "--temperature", "0",
                    "--max-new-tokens", "8", "--device", device]));
                Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompts", prompts, "--out", sampled, "--num-samples", "2",
                    "--max-new-tokens", "6", "--seed", "3", "--device", device]));
                Assert.Equal(0, Program.Main(["eval", "--model", dir, "--task", "arithmetic", "--n", "5", "--max-new-tokens", "6",
                    "--out", eval, "--device", device]));
                outputs[device] = (File.ReadAllLines(greedy), File.ReadAllLines(sampled), JsonDocument.Parse(File.ReadAllText(eval)).RootElement.Clone());
                output.WriteLine($"generate ×2 + eval on {device}: {clock.Elapsed.TotalSeconds:F1} s");
            }
            var (cpu, emu) = (outputs["cpu"], outputs[cudaName]);
            // Greedy decoding of the same weights: the same tokens on both devices, so the same text and accuracy.
            Assert.Equal(2, emu.Greedy.Length);
            Assert.Equal(cpu.Greedy, emu.Greedy);
            Assert.Equal(cpu.Eval.GetRawText(), emu.Eval.GetRawText());
            Assert.Equal(5, emu.Eval.GetProperty("completions").GetArrayLength());
            // Sampling draws from host-side probabilities of the device's logits: the right shape on the device.
            Assert.Equal(2, emu.Sampled.Length);
            foreach (var line in emu.Sampled)
            {
                var comps = JsonDocument.Parse(line).RootElement.GetProperty("completions");
                Assert.Equal(2, comps.GetArrayLength());
                foreach (var c in comps.EnumerateArray()) Assert.InRange(c.GetProperty("tokens").GetInt32(), 1, 6);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void TrainOnEmulatorRunsPretrainingAndGrpo() => TrainRunsPretrainingAndGrpo("cuda:emu");

    [CudaFact(CudaRuntimeKind.Gpu)]
    public void TrainOnGpuRunsPretrainingAndGrpo() => TrainRunsPretrainingAndGrpo("cuda");

    private void TrainRunsPretrainingAndGrpo(string cudaName)
    {
        var runs = Temp("runs");
        try
        {
            // The smallest run that still goes through every phase: 2 pre-training steps, held-out evaluations before
            // and after RL (one problem per level), one GRPO step of 1 prompt × 2 completions of ≤ 4 tokens.
            string[] Args(string device) =>
            [
                "train", "--runs-dir", runs, "--name", device.Replace(':', '-'), "--model-preset", "tiny", "--pretrain-steps", "2",
                "--pretrain-batch", "2", "--heldout-problems", "5", "--steps", "1", "--num-generations", "2", "--prompts-per-step", "1",
                "--max-completion-length", "4", "--eval-steps", "0", "--device", device,
            ];
            var seconds = new Dictionary<string, double>();
            foreach (var device in new[] { "cpu", cudaName })
            {
                var clock = Stopwatch.StartNew();
                Assert.Equal(0, Program.Main(Args(device)));
                seconds[device] = clock.Elapsed.TotalSeconds;
            }
            var metrics = new Dictionary<string, List<JsonElement>>();
            string cudaDir = cudaName.Replace(':', '-');
            foreach (var name in new[] { "cpu", cudaDir })
            {
                var dir = Path.Combine(runs, name);
                var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json"))).RootElement;
                Assert.Equal(1, summary.GetProperty("rl_steps").GetInt32());
                Assert.Equal(2, summary.GetProperty("timings").GetProperty("pretrain_steps").GetInt32());
                Assert.True(File.Exists(Path.Combine(dir, "model", "model.safetensors")));
                metrics[name] = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            }
            var emu = metrics[cudaDir];
            Assert.Equal(3, emu.Count);
            var rl = emu.Single(m => m.GetProperty("phase").GetInt32() == 1);
            foreach (var key in new[] { "loss", "grad_norm", "entropy", "reward" })
                Assert.True(double.IsFinite(rl.GetProperty(key).GetDouble()), $"GRPO {key} is not finite on {cudaName}");
            // Same initialisation, same data: the pre-training losses agree with the CPU's.
            double worst = 0;
            for (int i = 0; i < 2; i++)
            {
                double a = metrics["cpu"][i].GetProperty("loss").GetDouble(), b = emu[i].GetProperty("loss").GetDouble();
                worst = Math.Max(worst, Math.Abs(a - b) / Math.Abs(a));
            }
            output.WriteLine($"nr train: cpu {seconds["cpu"]:F1} s, {cudaName} {seconds[cudaName]:F1} s; pre-training loss cpu vs {cudaName} " +
                             $"relative difference {worst:E2}; GRPO loss on {cudaName} {rl.GetProperty("loss").GetDouble():G6}");
            Assert.True(worst <= 1e-4, $"pre-training losses differ between cpu and {cudaName} by {worst:E2}");
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void GrpoTrainerStepUsesTheFusedLossOnEmulatorWithTheComposedResults()
    {
        // One GRPO step (μ = 2 so old log-probs are used, β > 0 with a reference) with the fused loss and one with
        // the composition, from the same weights and seed: the same samples, so the same metrics. Every layer dense:
        // an MoE policy at μ > 1 takes the composition (its router shift is measured there).
        var emu = CudaDevice.GetEmulator();
        using var onDevice = Device.UseDefault(emu);
        var task = TaskRegistry.Create("arithmetic");
        var tokenizer = new CharTokenizer();
        var results = new List<Dictionary<string, double>>();
        foreach (bool fused in new[] { true, false })
        {
            var tiny = DeepseekV3Config.Preset("tiny");
            var cfg = tiny with
            {
                VocabSize = Math.Max(64, tokenizer.VocabSize),
                EosTokenIds = [tokenizer.EosId],
                FirstKDenseReplace = tiny.NumHiddenLayers,
            };
            using var model = new DeepseekV3ForCausalLM(cfg, new Generator(3), emu);
            using var reference = new DeepseekV3ForCausalLM(cfg, new Generator(4), emu);   // other weights: KL ≠ 0
            var config = new GrpoConfig
            {
                NumGenerations = 2, PromptsPerStep = 2, NumIterations = 2, MaxCompletionLength = 5, LossType = LossType.Grpo, Beta = 0.04f,
                LearningRate = 1e-3f, Seed = 5, FusedLoss = fused,
            };
            // A random model rarely answers right (all-equal rewards give zero advantages): score the text instead.
            var rewards = new RewardSet().Add(new AccuracyReward(task)).Add(new TextHashReward());
            using var trainer = new GrpoTrainer(new CausalLMPolicy(model), new CausalLMPolicy(reference), tokenizer, task, rewards,
                PromptTemplate.Default, config);
            Assert.Equal(fused, trainer.UsesFusedLoss);
            results.Add(trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value));
        }
        Assert.True(results[0]["grad_norm"] > 0, "no gradient: the comparison would be empty");
        Assert.True(results[0]["kl"] > 0, "no KL: the β term went untested");
        foreach (var key in new[] { "loss", "kl", "grad_norm", "entropy", "clip_ratio/region_mean", "reward", "completions/mean_length" })
        {
            double a = results[0][key], b = results[1][key];
            output.WriteLine($"{key}: fused {a:G9}, composed {b:G9}");
            // The loss is a mean of O(0.1..1) per-token terms that largely cancel (zero-mean advantages), so its
            // float error is relative to the terms, not to the small total: 1e-5 of at least 1e-2.
            Assert.True(Math.Abs(a - b) <= 1e-5 * Math.Max(1e-2, Math.Abs(b)), $"{key}: fused {a:G9}, composed {b:G9}");
        }
    }

    /// <summary>A reward in [0, 1) that differs between completions (a hash of the text), so advantages are not all zero.</summary>
    private sealed class TextHashReward : IRewardFunction
    {
        public string Name => "text_hash";

        public float? Score(RewardInput input)
        {
            uint h = 2166136261;
            foreach (char c in input.Completion) h = (h ^ c) * 16777619;
            return h % 97 / 97f;
        }
    }
}
