using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// The fused GRPO loss of the training path (<see cref="RolloutBatch.FusedLoss"/> → <see cref="Functional.GrpoTokenLoss"/>
/// → the CUDA kernel) on a tiny DeepSeek-V3 on cuda:emu, against the composition it replaces
/// (<see cref="RolloutBatch.LogProbs"/> → <see cref="GrpoLoss.Compute"/>) on cuda:emu and on the CPU: loss, every
/// parameter gradient, the metrics and the entropies, for each aggregation, with and without old log-probs, β and
/// the truncation mask.
/// </summary>
public sealed class CudaFusedGrpoTests(ITestOutputHelper output)
{
    private const int G = 3;
    private const float Temperature = 0.7f;

    private static RolloutBatch Batch()
    {
        // Two prompts of different lengths; completions of different lengths (the longest sets C_max = 7), some
        // truncated (no EOS within the limit).
        var prompts = new[] { new long[] { 3, 9, 14, 2 }, new long[] { 5, 6, 21, 8, 30, 4 } };
        var samples = new[]
        {
            new SampledSequence([11, 12, 13, 1], FinishReason.Eos),
            new SampledSequence([40, 41], FinishReason.Length),
            new SampledSequence([7, 8, 9, 10, 17, 18, 1], FinishReason.Eos),
            new SampledSequence([2], FinishReason.Length),
            new SampledSequence([33, 34, 35, 36, 1], FinishReason.Eos),
            new SampledSequence([50, 51, 52], FinishReason.Length),
        };
        return new RolloutBatch(prompts, samples, G);
    }

    private sealed record Outcome(float Loss, Dictionary<string, float[]> Grads, GrpoLossResult Metrics, float[] Entropy, long Launches);

    private static Outcome Run(Device device, bool fused, RolloutBatch batch, float[]? old, float[]? refp, float[] adv, bool maskTruncated,
        GrpoLossOptions options)
    {
        using var model = new DeepseekV3ForCausalLM(DeepseekV3Config.Preset("tiny"), new Generator(7), device);
        var policy = new CausalLMPolicy(model);
        using var scope = new TensorScope();
        using var _ = Device.UseDefault(device);
        var mask = batch.MaskTensor(maskTruncated);
        var maskArr = mask.ToArray();
        var entropy = new float[batch.Count * batch.MaxCompletion];
        long l0 = CudaKernels.LaunchesOnThisThread;
        Tensor? T2(float[]? a) => a == null ? null : Tensor.FromArray(a, batch.Count, batch.MaxCompletion);
        var result = fused
            ? batch.FusedLoss(policy, Temperature, old, refp, adv, maskArr, options, entropy)
            : GrpoLoss.Compute(batch.LogProbs(policy, Temperature, entropy), T2(old), T2(refp), Tensor.FromArray(adv, adv.Length), mask, options);
        model.ZeroGrad();
        result.Loss.Backward();
        long launches = CudaKernels.LaunchesOnThisThread - l0;
        var grads = model.NamedParameters().Where(p => p.Param.Grad != null).ToDictionary(p => p.Name, p => p.Param.Grad!.ToArray());
        return new Outcome(result.Loss.Item(), grads, result, entropy, launches);
    }

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [InlineData(LossType.Grpo, false, 0f, false)]
    [InlineData(LossType.Grpo, true, 0.04f, true)]
    [InlineData(LossType.Bnpo, true, 0f, false)]
    [InlineData(LossType.Bnpo, false, 0.1f, true)]
    [InlineData(LossType.DrGrpo, true, 0.04f, false)]
    [InlineData(LossType.DrGrpo, false, 0f, true)]
    [InlineData(LossType.Dapo, false, 0f, false)]
    [InlineData(LossType.Dapo, true, 0.04f, true)]
    public void FusedLossMatchesTheCompositionOnEmulatorAndCpu(LossType type, bool withOld, float beta, bool maskTruncated) =>
        FusedLossMatchesTheComposition(CudaDevice.GetEmulator(), type, withOld, beta, maskTruncated);

    [CudaTheory(CudaRuntimeKind.Gpu)]
    [InlineData(LossType.Grpo, true, 0.04f, true)]
    [InlineData(LossType.Bnpo, false, 0.1f, true)]
    [InlineData(LossType.DrGrpo, true, 0f, false)]
    [InlineData(LossType.Dapo, true, 0.04f, false)]
    public void FusedLossMatchesTheCompositionOnGpuAndCpu(LossType type, bool withOld, float beta, bool maskTruncated) =>
        FusedLossMatchesTheComposition(CudaDevice.Get(), type, withOld, beta, maskTruncated);

    private void FusedLossMatchesTheComposition(Device emu, LossType type, bool withOld, float beta, bool maskTruncated)
    {
        var batch = Batch();
        int N = batch.Count, C = batch.MaxCompletion;
        var rng = new Random(17 + (int)type * 5 + (withOld ? 1 : 0));
        var adv = Enumerable.Range(0, N).Select(_ => (float)(rng.NextDouble() * 3 - 1.5)).ToArray();
        adv[4] = 0f;

        // Old and reference log-probs around the policy's own (from the CPU, no grad): ratios 0.5..1.7, at least
        // 0.02 from the clip boundaries so a last-bit difference between devices cannot flip a branch.
        float[] lp0;
        using (var model = new DeepseekV3ForCausalLM(DeepseekV3Config.Preset("tiny"), new Generator(7), Device.Cpu))
        using (Tensor.NoGrad())
        using (var scope = new TensorScope())
            lp0 = batch.LogProbs(new CausalLMPolicy(model), Temperature).ToArray();
        float epsLow = 0.2f, epsHigh = 0.28f;
        float[]? old = null;
        if (withOld)
        {
            old = new float[N * C];
            for (int i = 0; i < old.Length; i++)
            {
                double rho;
                do rho = 0.5 + 1.2 * rng.NextDouble();
                while (Math.Abs(rho - (1 - epsLow)) < 0.02 || Math.Abs(rho - (1 + epsHigh)) < 0.02);
                old[i] = (float)(lp0[i] - Math.Log(rho));
            }
        }
        var refp = beta != 0 ? lp0.Select(v => v + (float)(rng.NextDouble() - 0.5)).ToArray() : null;
        float maskSum = batch.MaskTensor(maskTruncated).ToArray().Sum();
        var options = new GrpoLossOptions
        {
            LossType = type, Beta = beta, EpsilonLow = epsLow, EpsilonHigh = epsHigh, MaxCompletionLength = C + 2,
            GradientAccumulationSteps = type == LossType.Dapo ? 1 : 2,
            // dapo: a generation batch larger than this micro-batch.
            NumItemsInBatch = type == LossType.Dapo ? maskSum + 5 : null,
        };

        var fusedEmu = Run(emu, true, batch, old, refp, adv, maskTruncated, options);
        var compEmu = Run(emu, false, batch, old, refp, adv, maskTruncated, options);
        var compCpu = Run(Device.Cpu, false, batch, old, refp, adv, maskTruncated, options);

        double worstEmu = 0, worstCpu = 0, baseline = 0;
        foreach (var (what, reference) in new[] { ($"{emu} composition", compEmu), ("cpu composition", compCpu) })
        {
            double terms = Math.Max(Math.Abs(reference.Loss), 1e-3);
            Assert.True(Math.Abs(fusedEmu.Loss - reference.Loss) <= 1e-5 * terms, $"loss: fused {fusedEmu.Loss:G9}, {what} {reference.Loss:G9}");
            Assert.Equal(reference.Grads.Keys.Order(), fusedEmu.Grads.Keys.Order());
            Assert.NotEmpty(reference.Grads);
            foreach (var (name, g) in reference.Grads)
            {
                double e = RelL2(fusedEmu.Grads[name], g);
                if (reference == compEmu) worstEmu = Math.Max(worstEmu, e);
                else worstCpu = Math.Max(worstCpu, e);
                Assert.True(e <= 1e-5, $"{name}: relative error {e:E3} between the fused loss on {emu} and the {what}");
            }
            if (beta != 0) Assert.True(Math.Abs(fusedEmu.Metrics.Kl - reference.Metrics.Kl) <= 1e-5 * Math.Abs(reference.Metrics.Kl), $"kl vs {what}");
            else Assert.True(float.IsNaN(fusedEmu.Metrics.Kl));
            Assert.Equal(reference.Metrics.ClipRatioLow, fusedEmu.Metrics.ClipRatioLow);
            Assert.Equal(reference.Metrics.ClipRatioHigh, fusedEmu.Metrics.ClipRatioHigh);
            Assert.Equal(reference.Metrics.ClipRatioRegion, fusedEmu.Metrics.ClipRatioRegion);
            Assert.True(RelL2(fusedEmu.Entropy, reference.Entropy) <= 1e-5, $"entropy vs {what}");
        }
        foreach (var (name, g) in compCpu.Grads) baseline = Math.Max(baseline, RelL2(compEmu.Grads[name], g));
        if (withOld) Assert.True(fusedEmu.Metrics.ClipRatioRegion > 0, "no token was clipped: the clip branch went untested");
        output.WriteLine($"{type} old={withOld} beta={beta} maskTruncated={maskTruncated}: loss fused {fusedEmu.Loss:G9}, composition {emu} " +
                         $"{compEmu.Loss:G9}, cpu {compCpu.Loss:G9}; worst gradient error fused vs composition: {emu} {worstEmu:E2}, cpu {worstCpu:E2} " +
                         $"(composition {emu} vs cpu {baseline:E2}); launches fused {fusedEmu.Launches}, composition {compEmu.Launches}");
    }

    private static double RelL2(float[] a, float[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            if (double.IsNaN(d)) return double.PositiveInfinity;
            num += d * d;
            den += (double)b[i] * b[i];
        }
        return den == 0 ? (num == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(num / den);
    }
}
