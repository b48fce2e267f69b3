using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// The model on its fast kernels on the CUDA emulator, seen through <see cref="KernelDispatchCounters"/>: cached
/// decode on MlaDecode (DeepSeek) and the batched GQA decode kernel (dense families), equal to the CPU's general path
/// (fp32, ≤ 1e-4), also for a batch of slots with different lengths stepped in any order; bf16 autocast training on
/// the bf16 flash attention and bf16 GEMM kernels, within the bf16 error of the fp32 CPU run (printed beside it).
/// </summary>
public sealed class ModelFastPathTests(ITestOutputHelper output)
{
    // "tiny" (DeepSeek-V3, MLA) with head dims that the bf16 flash kernels take (multiples of 16), and qwen2-tiny
    // (GQA, 4 query heads over 2 K/V heads of 16).
    private static ICausalLM Build(string family, Device device) => family switch
    {
        "deepseek" => new DeepseekV3ForCausalLM(
            DeepseekV3Config.Preset("tiny") with { QkNopeHeadDim = 8, QkRopeHeadDim = 8, VHeadDim = 16 },
            new Generator(7), device),
        "qwen2" => ModelPresets.Get("qwen2-tiny").Build(new Generator(7), device),
        _ => throw new ArgumentException(family),
    };

    private static string DecodeKernel(string family) =>
        family == "deepseek" ? "nr_mla_decode_f32" : "nr_gqa_decode_f32";

    private static Device Emulator => Device.Parse("cuda:emu");

    private static long[] Ids(int n, int vocab, ulong seed)
    {
        var g = new Generator(seed);
        var ids = new long[n];
        for (int i = 0; i < ids.Length; i++) ids[i] = 2 + g.NextInt(vocab - 2);
        return ids;
    }

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [InlineData("deepseek")]
    [InlineData("qwen2")]
    public void CachedDecodeTakesTheDecodeKernelAndMatchesCpu(string family)
    {
        using var cpu = Build(family, Device.Cpu);
        using var emu = Build(family, Emulator);
        const int b = 2, t = 12, p = 6;
        var ids = Ids(b * t, cpu.Config.VocabSize, 3);
        var want = LogitsRunner.Run(cpu, ids, b, t, decodeFrom: p);
        float[] got, gotBf16;
        KernelDispatchCounters fp32Launches, bf16Launches;
        using (KernelDispatchCounters.Record(out fp32Launches))
            got = LogitsRunner.Run(emu, ids, b, t, decodeFrom: p);
        using (KernelDispatchCounters.Record(out bf16Launches))
        using (Autocast.Bf16())
            gotBf16 = LogitsRunner.Run(emu, ids, b, t, decodeFrom: p);
        double err = RelError(got, want), errBf16 = RelError(gotBf16, want);
        int layers = cpu.Config.NumHiddenLayers;
        output.WriteLine($"{family} cached decode on cuda:emu vs cpu: fp32 {err:E3}, bf16 autocast {errBf16:E3}; " +
                         fp32Launches.Summary());
        // One decode kernel per layer and step, for both runs; the bf16 run's products are bf16 GEMMs.
        Assert.Equal((t - p) * layers, fp32Launches[DecodeKernel(family)]);
        Assert.Equal((t - p) * layers, bf16Launches[DecodeKernel(family)]);
        Assert.True(bf16Launches.StartingWith("nr_gemm_bf16_") > 0, bf16Launches.Summary());
        Assert.True(err <= 1e-4, $"{family} fp32 decode logits: {err:E3}");
        // bf16 operands carry 8 significant bits (relative rounding 2^-9 ≈ 2e-3 per operand); measured 6.6e-3
        // (deepseek) and 7.7e-3 (qwen2) on the emulator.
        Assert.True(errBf16 <= 2e-2, $"{family} bf16 decode logits: {errBf16:E3}");
    }

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [InlineData("deepseek")]
    [InlineData("qwen2")]
    public void BatchedDecodeWithDifferentLengthsMatchesSingleSequences(string family)
    {
        using var cpu = Build(family, Device.Cpu);
        using var emu = Build(family, Emulator);
        int vocab = cpu.Config.VocabSize;
        int[] promptLengths = [5, 2, 7];
        var prompts = promptLengths.Select((n, i) => Ids(n, vocab, 20 + (ulong)i)).ToArray();
        // Steps over some of the slots, in any order: slot 1 sits idle in the first step.
        int[][] steps = [[2, 0], [1, 2, 0], [0, 1]];
        var tokens = steps.Select((rows, s) => Ids(rows.Length, vocab, 40 + (ulong)s)).ToArray();

        // Reference: each sequence alone in its own cache on the CPU's general attention path.
        var want = new Dictionary<(int Step, int Slot), float[]>();
        using (Tensor.NoGrad())
            for (int slot = 0; slot < prompts.Length; slot++)
            {
                using var cache = cpu.CreateCache(1, 16);
                using (new TensorScope())
                    cpu.Forward(Tensor.FromArray(prompts[slot], [1, prompts[slot].Length]), cache);
                for (int s = 0; s < steps.Length; s++)
                {
                    int i = Array.IndexOf(steps[s], slot);
                    if (i < 0) continue;
                    using var scope = new TensorScope();
                    want[(s, slot)] = cpu.ForwardCached(Tensor.FromArray([tokens[s][i]], [1, 1]), cache).ToArray();
                }
            }

        // The device: one cache of three slots, each prefilled on its own, then batched steps over the slots.
        double worst = 0;
        KernelDispatchCounters launches;
        using (KernelDispatchCounters.Record(out launches))
        using (Tensor.NoGrad())
        {
            using var cache = emu.CreateCache(prompts.Length, 16);
            for (int slot = 0; slot < prompts.Length; slot++)
                using (new TensorScope())
                    emu.ForwardCached(Tensor.FromArray(prompts[slot], [1, prompts[slot].Length]).To(emu.Device), cache,
                        [slot]);
            for (int s = 0; s < steps.Length; s++)
            {
                using var scope = new TensorScope();
                var logits = emu.ForwardCached(Tensor.FromArray(tokens[s], [steps[s].Length, 1]).To(emu.Device),
                    cache, steps[s]).ToArray();                                          // [n, 1, V]
                for (int i = 0; i < steps[s].Length; i++)
                {
                    double e = RelError(logits.AsSpan(i * vocab, vocab), want[(s, steps[s][i])]);
                    worst = Math.Max(worst, e);
                    Assert.True(e <= 1e-4, $"{family} step {s}, slot {steps[s][i]}: {e:E3}");
                }
            }
            Assert.Equal([8, 4, 9], cache.Lengths);
        }
        output.WriteLine($"{family}: batched decode over slots of lengths 5/2/7 vs one sequence at a time on the " +
                         $"cpu: worst {worst:E3}; {launches[DecodeKernel(family)]} decode kernel launches");
        Assert.Equal(steps.Length * cpu.Config.NumHiddenLayers, launches[DecodeKernel(family)]);
    }

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [InlineData("deepseek")]
    [InlineData("qwen2")]
    public void Bf16TrainingTakesTheFlashKernelsAndTracksTheFp32CpuRun(string family)
    {
        const int b = 2, t = 10, steps = 3;
        var losses = new List<float[]>();
        var grads = new List<Dictionary<string, float[]>>();
        KernelDispatchCounters launches = null!;
        foreach (var device in new[] { Device.Cpu, Emulator })
        {
            bool bf16 = device.Type == DeviceType.Cuda;
            using var model = Build(family, device);
            using var opt = new global::NativeReasoner.Optim.AdamW(model.Parameters(), lr: 3e-3f);
            var ids = Ids(b * t, model.Config.VocabSize, 11);
            var l = new float[steps];
            using var recording = KernelDispatchCounters.Record(out var counters);
            for (int step = 0; step < steps; step++)
            {
                using var scope = new TensorScope();
                Tensor loss;
                using (bf16 ? Autocast.Bf16() : null) loss = NextTokenLoss(model, ids, b, t);
                opt.ZeroGrad();
                loss.Backward();   // outside the scope: the recorded bf16 products run their backward in bf16
                if (step == 0)
                    grads.Add(model.NamedParameters().Where(p => p.Param.Grad != null)
                        .ToDictionary(p => p.Name, p => p.Param.Grad!.ToArray()));
                opt.Step();
                l[step] = loss.Item();
            }
            losses.Add(l);
            if (bf16) launches = counters;
            // Master weights and AdamW state stay fp32.
            Assert.All(model.Parameters(), p => Assert.Equal(DType.Float32, p.DType));
        }
        double lossErr = RelError(losses[1], losses[0]), gradErr = 0;
        string worstName = "";
        foreach (var (name, g) in grads[0])
        {
            double e = RelError(grads[1][name], g);
            if (e > gradErr) (gradErr, worstName) = (e, name);
        }
        int layers = Build(family, Device.Cpu).Config.NumHiddenLayers;
        output.WriteLine($"{family} bf16 autocast on cuda:emu vs fp32 cpu: losses {string.Join(", ", losses[1])} vs " +
                         $"{string.Join(", ", losses[0])} (relative {lossErr:E3}); first-step gradients worst " +
                         $"{gradErr:E3} ({worstName}); {launches.Summary()}");
        Assert.Equal(steps * layers, launches.StartingWith("nr_attnbf16_fwd_"));
        Assert.Equal(steps * layers, launches.StartingWith("nr_attnbf16_bwd_d"));
        Assert.Equal(0, launches.StartingWith("nr_attention_fwd_f32"));
        Assert.True(launches.StartingWith("nr_gemm_bf16_") > 0, "no bf16 GEMM ran");
        // Every product, the experts' grouped GEMMs and every gradient product included, ran in bf16.
        Assert.Equal(0, launches.StartingWith("nr_gemm_f32"));
        Assert.True(losses[1][^1] < losses[1][0], "bf16 AdamW steps do not lower the loss");
        // bf16 rounding of every product operand (2^-9 relative each), measured on the emulator: losses 3.1e-4
        // (deepseek) and 2.4e-4 (qwen2); the worst first-step gradient (max |Δ| / max |g| of one parameter) 4.9e-2
        // (deepseek, q_a_proj) and 1.6e-2 (qwen2). The bounds leave room for a GPU's rounding order (atomic dq).
        Assert.True(lossErr <= 5e-3, $"{family}: bf16 losses differ from fp32 by {lossErr:E3}");
        Assert.True(gradErr <= 1e-1, $"{family}: bf16 gradient {worstName} differs from fp32 by {gradErr:E3}");
    }

    private static Tensor NextTokenLoss(ICausalLM model, long[] ids, int b, int t)
    {
        var input = Tensor.FromArray(ids, [b, t], model.Device);
        var logits = model.Forward(input);                                       // [b, t, V]
        var inputs = logits.Narrow(1, 0, t - 1).Reshape(-1, model.Config.VocabSize);
        var targets = input.Narrow(1, 1, t - 1).Reshape(-1);
        return Functional.CrossEntropy(inputs, targets);
    }

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [InlineData("tiny")]
    [InlineData("qwen2-tiny")]
    public void GenerateOnTheEmulatorTakesTheDecodeKernelAndMatchesCpu(string preset)
    {
        var root = TempDir();
        try
        {
            var tok = new CharTokenizer();
            var config = ModelPresets.Get(preset).ForTokenizer(tok.VocabSize, tok.EosId, tok.BosId, tok.PadId);
            var dir = Path.Combine(root, preset);
            using (var bundle = ModelBundle.Create(config.Build(new Generator(5)), tok, PromptTemplate.Default))
                bundle.Save(dir);
            var prompts = Path.Combine(root, "prompts.jsonl");
            File.WriteAllLines(prompts, ["{\"prompt\": \"What is 2 + 3?\"}"]);
            string Run(string device, params string[] extra)
            {
                var outPath = Path.Combine(root, $"out-{device.Replace(':', '-')}-{extra.Length}.jsonl");
                Assert.Equal(0, Program.Main(["generate", "--model", dir, "--prompts", prompts, "--out", outPath,
                    "--temperature", "0", "--max-new-tokens", "5", "--device", device, .. extra]));
                return File.ReadAllText(outPath);
            }
            string cpu = Run("cpu");
            string emu;
            KernelDispatchCounters launches, bf16Launches;
            using (KernelDispatchCounters.Record(out launches)) emu = Run("cuda:emu");
            using (KernelDispatchCounters.Record(out bf16Launches)) Run("cuda:emu", "--bf16");
            output.WriteLine($"nr generate --device cuda:emu ({preset}): {launches.Summary()}");
            Assert.Equal(cpu, emu);
            string kernel = preset == "tiny" ? "nr_mla_decode_f32" : "nr_gqa_decode_f32";
            // 5 new tokens: the first from the prefill, 4 cached steps through every layer.
            Assert.Equal(4 * config.NumHiddenLayers, launches[kernel]);
            Assert.Equal(4 * config.NumHiddenLayers, bf16Launches[kernel]);
            Assert.True(bf16Launches.StartingWith("nr_gemm_bf16_") > 0, bf16Launches.Summary());
            Assert.Equal(0, launches.StartingWith("nr_gemm_bf16_"));
        }
        finally { Directory.Delete(root, true); }
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void TrainWithBf16OnTheEmulatorTakesTheFlashKernelsAndTracksTheCpuLosses()
    {
        var runs = Path.Combine(Path.GetTempPath(), "nr-runs-" + Guid.NewGuid().ToString("N"));
        try
        {
            string[] Args(string device, params string[] extra) =>
            [
                "train", "--runs-dir", runs, "--name", device.Replace(':', '-'), "--model-preset", "qwen2-tiny",
                "--pretrain-steps", "2", "--pretrain-batch", "2", "--heldout-problems", "5", "--steps", "1",
                "--num-generations", "2", "--prompts-per-step", "1", "--max-completion-length", "4", "--eval-steps",
                "0", "--device", device, .. extra,
            ];
            Assert.Equal(0, Program.Main(Args("cpu")));
            KernelDispatchCounters launches;
            using (KernelDispatchCounters.Record(out launches))
                Assert.Equal(0, Program.Main(Args("cuda:emu", "--bf16")));
            double Loss(string name, int i) => JsonDocument.Parse(File.ReadAllLines(Path.Combine(runs, name,
                "metrics.jsonl"))[i]).RootElement.GetProperty("loss").GetDouble();
            double worst = 0;
            for (int i = 0; i < 2; i++)
                worst = Math.Max(worst, Math.Abs(Loss("cuda-emu", i) - Loss("cpu", i)) / Math.Abs(Loss("cpu", i)));
            output.WriteLine($"nr train --bf16 on cuda:emu vs fp32 cpu: pre-training loss relative difference " +
                             $"{worst:E3}; {launches.Summary()}");
            Assert.True(launches.StartingWith("nr_attnbf16_fwd_") > 0, launches.Summary());
            Assert.True(launches.StartingWith("nr_attnbf16_bwd_d") > 0, launches.Summary());
            Assert.True(launches.StartingWith("nr_gemm_bf16_") > 0, launches.Summary());
            Assert.True(worst <= 1e-2, $"bf16 pre-training losses differ from fp32 by {worst:E3}");
        }
        finally { if (Directory.Exists(runs)) Directory.Delete(runs, true); }
    }

    [Fact]
    public void Bf16TrainingOnADeviceWithoutFlashKernelsIsRefusedByName()
    {
        var e = Assert.Throws<NotSupportedException>(() => Bf16Option.Use(true, Device.Cpu, "train", training: true));
        Assert.Contains("'cpu'", e.Message);
        Assert.Contains("--device cuda", e.Message);
        // Inference --bf16 runs on every device (bf16 GEMMs exist on all backends).
        using var scope = Bf16Option.Use(true, Device.Cpu, "generate", training: false);
        Assert.True(Autocast.IsBf16);
    }
}
