using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Nn;
using NativeReasoner.Optim;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Optim.OptimTestHelpers;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// AdamW's multi-tensor path (<see cref="AdamW.Foreach"/>: one <c>AdamWStepMulti</c> launch per bucket of tensors
/// that share a device and a step count) against its per-tensor path on the same emulated device and against the
/// CPU: two groups with their own learning rate and weight decay, sizes from 1 element to several 16384-element
/// chunks, a parameter that skips a step and one that gets its first gradient late (so a group holds several step
/// counts), and a strided gradient.
/// </summary>
public sealed class CudaAdamWMultiTests(ITestOutputHelper output)
{
    private static readonly int[] Sizes = [1, 7, 40_000, 300, 16_384, 5];

    // The gradient of parameter i at step s, or null where the parameter has none that step.
    private static float[]? Grad(int i, int step)
    {
        if (i == 1 && step == 2) return null;      // skips one step: its t lags by one from then on
        if (i == 4 && step < 3) return null;       // first gradient at step 3: t lags by two
        return Values(Sizes[i], 1000 * i + step, scale: 0.5f + step);
    }

    private sealed class Run : IDisposable
    {
        public readonly Parameter[] Params;
        public readonly AdamW Opt;

        public Run(Device device, bool foreachOn)
        {
            Params = Sizes.Select((n, i) => NewParameter(Values(n, 77 + i), device, n)).ToArray();
            Opt = new AdamW(
                [
                    new ParamGroup(Params.Take(3), learningRate: 0.01f, weightDecay: 0.1f),
                    new ParamGroup(Params.Skip(3), learningRate: 0.003f, weightDecay: 0f),
                ],
                beta1: 0.8f, beta2: 0.95f, eps: 1e-6f)
            { Foreach = foreachOn };
        }

        public void Step(int step)
        {
            for (int i = 0; i < Params.Length; i++)
            {
                var g = Grad(i, step);
                if (g == null) { Params[i].Grad = null; continue; }
                if (i == 3)
                {
                    // A strided gradient (column 0 of a [300, 2] tensor, stride 2), which Step copies before the update.
                    var wide = new float[2 * g.Length];
                    for (int k = 0; k < g.Length; k++) wide[2 * k] = g[k];
                    using (TensorScope.Suspend())
                    {
                        using var t = Tensor.FromArray(wide, [g.Length, 2], Params[i].Device);
                        using var column = t.Narrow(1, 0, 1);
                        var strided = column.Squeeze(1);
                        Assert.False(strided.IsContiguous);
                        Params[i].Grad = strided;
                    }
                }
                else SetGrad(Params[i], g);
            }
            Opt.Step();
        }

        public void Dispose()
        {
            Opt.Dispose();
            foreach (var p in Params) p.Dispose();
        }
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void MultiTensorMatchesPerTensorAndCpuOnEmulator() => MultiTensorMatchesPerTensorAndCpu(CudaDevice.GetEmulator());

    [CudaFact(CudaRuntimeKind.Gpu)]
    public void MultiTensorMatchesPerTensorAndCpuOnGpu() => MultiTensorMatchesPerTensorAndCpu(CudaDevice.Get());

    private void MultiTensorMatchesPerTensorAndCpu(Device emu)
    {
        using var multi = new Run(emu, foreachOn: true);
        using var single = new Run(emu, foreachOn: false);
        using var cpu = new Run(Device.Cpu, foreachOn: true);
        double worstSingle = 0, worstCpu = 0;
        var launches = new long[2];
        for (int step = 1; step <= 6; step++)
        {
            long l0 = CudaKernels.LaunchesOnThisThread;
            multi.Step(step);
            long l1 = CudaKernels.LaunchesOnThisThread;
            single.Step(step);
            long l2 = CudaKernels.LaunchesOnThisThread;
            cpu.Step(step);
            if (step == 5)
            {
                launches[0] = l1 - l0;
                launches[1] = l2 - l1;
            }
            for (int i = 0; i < Sizes.Length; i++)
            {
                var m = multi.Params[i].ToArray();
                double es = RelL2(m, single.Params[i].ToArray()), ec = RelL2(m, cpu.Params[i].ToArray());
                worstSingle = Math.Max(worstSingle, es);
                worstCpu = Math.Max(worstCpu, ec);
                Assert.True(es <= 1e-6, $"step {step}, parameter {i} ({Sizes[i]}): multi vs per-tensor on {emu}, relative error {es:E3}");
                Assert.True(ec <= 1e-6, $"step {step}, parameter {i} ({Sizes[i]}): {emu} vs cpu, relative error {ec:E3}");
                Assert.Equal(cpu.Opt.ParameterStep(cpu.Params[i]), multi.Opt.ParameterStep(multi.Params[i]));
            }
        }
        Assert.Equal(6 - 1, multi.Opt.ParameterStep(multi.Params[1]));
        Assert.Equal(6 - 2, multi.Opt.ParameterStep(multi.Params[4]));
        // Step 5: group 1 holds t = 5 (params 0, 2) and t = 4 (param 1); group 2 t = 5 (3, 5) and t = 3 (4), plus the
        // copy of the strided gradient: 2 + 2 + 1 launches, against 6 + 1 per tensor.
        output.WriteLine($"launches at step 5: multi-tensor {launches[0]}, per-tensor {launches[1]}; worst relative error " +
                         $"multi vs per-tensor {worstSingle:E3}, {emu} vs cpu {worstCpu:E3}");
        Assert.Equal(5, launches[0]);
        Assert.Equal(7, launches[1]);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void SavedStateResumesOnTheMultiTensorPath()
    {
        // The multi-tensor path keeps the same per-parameter state, so save → load → continue equals running on.
        var emu = CudaDevice.GetEmulator();
        var path = Path.Combine(Path.GetTempPath(), "nr-adamw-" + Guid.NewGuid().ToString("N") + ".safetensors");
        try
        {
            using var straight = new Run(emu, foreachOn: true);
            using var resumed = new Run(emu, foreachOn: true);
            for (int step = 1; step <= 3; step++)
            {
                straight.Step(step);
                resumed.Step(step);
            }
            resumed.Opt.SaveState(path);
            using var fresh = new Run(emu, foreachOn: true);
            for (int i = 0; i < Sizes.Length; i++)
                using (Tensor.NoGrad())
                    fresh.Params[i].CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(resumed.Params[i].ToArray().AsSpan()));
            fresh.Opt.LoadState(path);
            for (int step = 4; step <= 6; step++)
            {
                straight.Step(step);
                fresh.Step(step);
            }
            for (int i = 0; i < Sizes.Length; i++) Assert.Equal(straight.Params[i].ToArray(), fresh.Params[i].ToArray());
        }
        finally { File.Delete(path); }
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
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }
}
