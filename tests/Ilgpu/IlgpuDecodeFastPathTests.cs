using NativeReasoner.Kernels;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>
/// A dense (GQA) model's cached decode on the ilgpu device takes the device's batched GQA decode kernel (seen in
/// <see cref="KernelDispatchCounters"/>) and matches the CPU's general attention path, also for a cache of slots
/// with different lengths stepped in any order.
/// </summary>
public sealed class IlgpuDecodeFastPathTests(ITestOutputHelper output)
{
    [Fact]
    public void CachedDecodeOverSlotsOfDifferentLengthsTakesTheKernelAndMatchesCpu()
    {
        using var cpu = ModelPresets.Get("qwen2-tiny").Build(new Generator(7), Device.Cpu);
        using var dev = ModelPresets.Get("qwen2-tiny").Build(new Generator(7), Device.Ilgpu);
        int layers = cpu.Config.NumHiddenLayers;
        long[][] prompts = [[3, 9, 14, 2, 7], [5, 6], [8, 1, 4]];
        int[][] steps = [[2, 0], [1, 2, 0]];
        long[][] tokens = [[11, 12], [13, 14, 15]];
        double worst = 0;
        KernelDispatchCounters launches;
        using (Tensor.NoGrad())
        using (KernelDispatchCounters.Record(out launches))
        {
            using var cpuCache = cpu.CreateCache(prompts.Length, 16);
            using var devCache = dev.CreateCache(prompts.Length, 16);
            for (int slot = 0; slot < prompts.Length; slot++)
                using (new TensorScope())
                {
                    var ids = Tensor.FromArray(prompts[slot], [1, prompts[slot].Length]);
                    cpu.ForwardCached(ids, cpuCache, [slot]);
                    dev.ForwardCached(ids.To(dev.Device), devCache, [slot]);
                }
            for (int s = 0; s < steps.Length; s++)
            {
                using var scope = new TensorScope();
                var ids = Tensor.FromArray(tokens[s], [steps[s].Length, 1]);
                // The CPU steps one sequence at a time (its general path); the device all of them in one call.
                var want = steps[s].SelectMany((slot, i) =>
                    cpu.ForwardCached(ids.Narrow(0, i, 1), cpuCache, [slot]).ToArray()).ToArray();
                var got = dev.ForwardCached(ids.To(dev.Device), devCache, steps[s]).ToArray();
                double e = RelError(got, want);
                worst = Math.Max(worst, e);
                Assert.True(e <= 1e-4, $"step {s}: {e:E3}");
            }
        }
        output.WriteLine($"qwen2-tiny decode over slots of lengths 5/2/3 on ilgpu vs cpu: worst {worst:E3}; " +
                         $"{launches["ilgpu_gqa_decode"]} decode kernel launches");
        Assert.Equal(steps.Length * layers, launches["ilgpu_gqa_decode"]);
    }
}
