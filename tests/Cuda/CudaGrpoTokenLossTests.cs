using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Kernels.Reference;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// The fused CUDA GRPO token loss (<see cref="CudaKernels.GrpoTokenLoss"/>) against the engine's own GRPO path:
/// TokenLogProbs.Selected → GrpoLoss.Compute → Backward on CPU tensors, for each aggregation, with the kernel's
/// per-token weights set to what that aggregation's derivative is. Same total loss, same dlogits.
/// </summary>
public sealed unsafe class CudaGrpoTokenLossTests
{
    [CudaTheory(CudaRuntimeKind.Emulator)]
    [InlineData(LossType.Grpo, 0.04f, true, 0.7f)]
    [InlineData(LossType.Bnpo, 0.04f, true, 1f)]
    [InlineData(LossType.DrGrpo, 0.1f, true, 0.9f)]
    [InlineData(LossType.Dapo, 0f, true, 0.7f)]
    [InlineData(LossType.Grpo, 0.04f, false, 1f)]
    public void MatchesTheEngineGrpoLossAndGradient(LossType type, float beta, bool withOld, float temperature)
    {
        const int B = 4, T = 6, V = 37, ga = 2;
        int rows = B * T;
        var rng = new Random(1234 + (int)type * 7 + (withOld ? 1 : 0));
        float[] Rand(int n, float lo, float hi) => Enumerable.Range(0, n).Select(_ => lo + (hi - lo) * (float)rng.NextDouble()).ToArray();
        var logits = Rand(rows * V, -4f, 4f);
        var ids = Enumerable.Range(0, rows).Select(_ => (long)rng.Next(V)).ToArray();
        var mask = Enumerable.Range(0, rows).Select(i => i % T == 0 || rng.Next(4) != 0 ? 1f : 0f).ToArray(); // ≥ 1 token per sequence
        mask[T + 1] = 0f;
        var adv = Rand(B, -1.5f, 1.5f);
        adv[2] = 0f;
        float epsLow = 0.2f, epsHigh = 0.28f;

        // Old and reference log-probs around the current ones, ratios ≥ 0.02 from the clip boundaries.
        var logp0 = new float[rows];
        var lse0 = new float[rows];
        fixed (float* pl = logits, pp = logp0, pe = lse0) fixed (long* pi = ids)
            ReferenceKernels.Instance.LogSoftmaxGather(pl, pi, pp, pe, rows, V, 1f / temperature);
        var old = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double rho;
            do rho = 0.5 + 1.2 * rng.NextDouble();
            while (Math.Abs(rho - (1 - epsLow)) < 0.02 || Math.Abs(rho - (1 + epsHigh)) < 0.02);
            old[r] = (float)(logp0[r] - Math.Log(rho));
        }
        var refp = logp0.Select(v => v + (float)(rng.NextDouble() - 0.5)).ToArray();

        // The engine.
        var options = new GrpoLossOptions
        {
            LossType = type, Beta = beta, EpsilonLow = epsLow, EpsilonHigh = epsHigh, MaxCompletionLength = T + 3,
            GradientAccumulationSteps = ga,
        };
        float engineLoss;
        float[] engineGrad;
        using (var scope = new TensorScope())
        {
            var lt = Tensor.FromArray(logits, B, T, V).RequiresGrad_();
            var lp = TokenLogProbs.Selected(lt, Tensor.FromArray(ids, B, T), temperature);
            using var result = GrpoLoss.Compute(lp, withOld ? Tensor.FromArray(old, B, T) : null, Tensor.FromArray(refp, B, T),
                Tensor.FromArray(adv, B), Tensor.FromArray(mask, B, T), options);
            result.Loss.Backward();
            engineLoss = result.Loss.Item();
            engineGrad = lt.Grad!.ToArray();
        }

        // The kernel, with weight = ∂(aggregated loss)/∂(masked per-token loss).
        var weight = new float[rows];
        float total = Math.Max(1f, mask.Sum());
        for (int b = 0; b < B; b++)
        {
            float len = Math.Max(1f, mask.Skip(b * T).Take(T).Sum());
            for (int t = 0; t < T; t++)
                weight[b * T + t] = type switch
                {
                    LossType.Grpo => 1f / (len * B * ga),
                    LossType.Bnpo => 1f / (total * ga),
                    LossType.DrGrpo => 1f / ((float)B * options.MaxCompletionLength * ga),
                    _ => 1f / total,
                };
        }
        var be = CudaBackend.Emulator;
        var buffers = new List<global::NativeReasoner.Kernels.Memory.NativeBuffer>();
        T2* Up<T2>(T2[] a) where T2 : unmanaged
        {
            var b = be.Memory.Allocate((long)a.Length * sizeof(T2));
            buffers.Add(b);
            fixed (T2* p = a) be.Memory.CopyFromHost(p, b.Pointer, (long)a.Length * sizeof(T2));
            return (T2*)b.Pointer;
        }
        T2[] Down<T2>(T2* d, int n) where T2 : unmanaged
        {
            var h = new T2[n];
            fixed (T2* p = h) be.Memory.CopyToHost((byte*)d, p, (long)n * sizeof(T2));
            return h;
        }
        try
        {
            float* loss = Up(new float[rows]), logp = Up(new float[rows]), dlogits = Up(new float[rows * V]);
            be.Kernels.GrpoTokenLoss(Up(logits), Up(ids), withOld ? Up(old) : null, Up(refp), Up(adv), Up(mask), Up(weight),
                loss, logp, dlogits, rows, V, new GrpoTokenLossOptions(temperature, beta, epsLow, epsHigh, T));
            var tokenLoss = Down(loss, rows);
            double kernelLoss = 0;
            for (int r = 0; r < rows; r++) kernelLoss += (double)weight[r] * tokenLoss[r];
            var grad = Down(dlogits, rows * V);

            // The loss is a mean of O(0.1..1) terms that partly cancel (zero-mean advantages): relative to the terms.
            double terms = 0;
            for (int r = 0; r < rows; r++) terms += Math.Abs((double)weight[r] * tokenLoss[r]);
            Assert.True(Math.Abs(kernelLoss - engineLoss) <= 1e-5 * Math.Max(Math.Abs(engineLoss), terms),
                $"loss: kernel {kernelLoss:G9}, engine {engineLoss:G9}");
            double num = 0, den = 0;
            for (int i = 0; i < grad.Length; i++)
            {
                num += (double)(grad[i] - engineGrad[i]) * (grad[i] - engineGrad[i]);
                den += (double)engineGrad[i] * engineGrad[i];
            }
            Assert.True(den > 0, "the engine's gradient is all zero");
            Assert.True(Math.Sqrt(num / den) <= 1e-5, $"dlogits: relative error {Math.Sqrt(num / den):E3}");
            var logpK = Down(logp, rows);
            for (int r = 0; r < rows; r++) Assert.True(Math.Abs(logpK[r] - logp0[r]) <= 1e-5 * Math.Max(1, Math.Abs(logp0[r])), $"logp[{r}]");
        }
        finally
        {
            foreach (var b in buffers) b.Release();
        }
    }
}
