using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Kernels.Fallback;
using NativeReasoner.Kernels.Ilgpu;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;
using NativeReasoner.Kernels.Verification;
using NativeReasoner.Tests.Cuda;
using Xunit;

namespace NativeReasoner.Tests.Kernels;

/// <summary>
/// The supports-op fallback: a backend without the batched GQA decode kernel gets <see cref="HostGqaDecodeAttention"/>,
/// which runs it on the CPU backend through host memory, gives the reference result and warns once per backend
/// (driven here on ILGPU's memory directly, since every backend now has its own kernel).
/// </summary>
public sealed unsafe class KernelFallbackTests
{
    [Fact]
    public void SupportsReportsWhichBackendsHaveTheOptionalOps()
    {
        Assert.True(KernelFallback.Supports(CpuKernels.Instance, OptionalOp.GqaDecodeAttention));
        Assert.True(KernelFallback.Supports(ReferenceKernels.Instance, OptionalOp.GqaDecodeAttention));
        Assert.True(KernelFallback.Supports(IlgpuBackend.Shared.Kernels, OptionalOp.GqaDecodeAttention));
        // The fused AdamW and GRPO loss have ILGPU kernels now, and the CPU backend fuses the GRPO loss too; the
        // reference (the oracle) stays on the plain compositions.
        Assert.True(KernelFallback.Supports(IlgpuBackend.Shared.Kernels, OptionalOp.MultiTensorAdamW));
        Assert.True(KernelFallback.Supports(IlgpuBackend.Shared.Kernels, OptionalOp.GrpoTokenLoss));
        Assert.True(KernelFallback.Supports(CpuKernels.Instance, OptionalOp.GrpoTokenLoss));
        Assert.False(KernelFallback.Supports(ReferenceKernels.Instance, OptionalOp.GrpoTokenLoss));
        Assert.Same(CpuKernels.Instance, KernelFallback.GqaDecode(CpuKernels.Instance, HostMemory.Instance));
    }

    [Fact]
    public void AnUnsupportedOpRunsThroughTheFallbackWithTheReferenceResultAndWarnsOnce()
    {
        var backend = IlgpuBackend.Shared;
        var warnings = new List<string>();
        var decode = new HostGqaDecodeAttention(backend.Kernels.Name, backend.Memory, warnings.Add);
        int[] lens = [5, 0, 9];
        const int batch = 3, Hq = 6, Hkv = 2, capacity = 9, Dk = 12, Dv = 8;
        var rng = new Random(7);
        float[] Rand(int n) => Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        var q = Rand(batch * Hq * Dk);
        var k = Rand(batch * Hkv * capacity * Dk);
        var v = Rand(batch * Hkv * capacity * Dv);
        var oRef = new float[batch * Hq * Dv];
        var lseRef = new float[batch * Hq];
        fixed (float* pq = q, pk = k, pv = v, po = oRef, pl = lseRef) fixed (int* plen = lens)
            ReferenceKernels.Instance.GqaDecodeAttention(pq, pk, pv, plen, po, pl, batch, Hq, Hkv, capacity, Dk, Dv,
                0.3f);

        for (int call = 0; call < 2; call++)
        {
            using var ctx = new KernelCheckContext(backend.Kernels, backend.Memory, seed: 1);
            float* o = ctx.Garbage<float>(oRef.Length), lse = ctx.Garbage<float>(lseRef.Length);
            fixed (int* plen = lens)
                decode.GqaDecodeAttention(ctx.Up(q), ctx.Up(k), ctx.Up(v), plen, o, lse, batch, Hq, Hkv, capacity,
                    Dk, Dv, 0.3f);
            ctx.Close(ctx.Down(o, oRef.Length), oRef, 1e-5, "o");
            ctx.Close(ctx.Down(lse, lseRef.Length), lseRef, 1e-5, "lse");
            Assert.True(ctx.Failures.Count == 0, string.Join("\n", ctx.Failures));
        }
        var warning = Assert.Single(warnings);
        Assert.Contains(backend.Kernels.Name, warning);
        Assert.Contains(nameof(OptionalOp.GqaDecodeAttention), warning);
    }

    [Fact]
    public void TheFallbackChecksItsArgumentsBeforeCopying()
    {
        var backend = IlgpuBackend.Shared;
        var decode = new HostGqaDecodeAttention(backend.Kernels.Name, backend.Memory, _ => { });
        int[] lens = [4];
        var e = Assert.Throws<ArgumentException>(() =>
        {
            fixed (int* plen = lens)
                decode.GqaDecodeAttention(null, null, null, plen, null, null, 1, 6, 4, 4, 4, 4, 1f);
        });
        Assert.Contains("Hq = 6", e.Message);
    }

    [Fact]
    public void TheDispatcherHandsOutTheBackendsOwnKernel()
    {
        var kernels = IlgpuBackend.Shared.Kernels;
        Assert.Same(kernels, KernelFallback.GqaDecode(kernels, IlgpuBackend.Shared.Memory));
        Assert.Same(CpuKernels.Instance, Device.Cpu.GqaDecode);
        Assert.Same(ReferenceKernels.Instance, Device.Reference.GqaDecode);
    }

    [Fact]
    public void TheConformanceSuiteSaysWhichBackendsRanTheirOwnKernel()
    {
        var backend = IlgpuBackend.Shared;
        var check = KernelChecks.All.First(c => c.Name.StartsWith("attention/gqa-decode/b", StringComparison.Ordinal));
        var onIlgpu = KernelChecks.Run(check, backend.Kernels, backend.Memory);
        Assert.True(onIlgpu.Passed, string.Join("\n", onIlgpu.Failures));
        Assert.Null(onIlgpu.Fallback); // ILGPU's own kernel (IlgpuKernels.GqaDecode.cs)
        var onCpu = KernelChecks.Run(check, CpuKernels.Instance, HostMemory.Instance);
        Assert.Null(onCpu.Fallback);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void TheCudaBackendRunsItsOwnGqaDecodeKernel()
    {
        var backend = CudaBackend.Emulator;
        Assert.True(KernelFallback.Supports(backend.Kernels, OptionalOp.GqaDecodeAttention));
        Assert.Same(backend.Kernels, KernelFallback.GqaDecode(backend.Kernels, backend.Memory));
        var checks = KernelChecks.All.Where(c => c.Name.StartsWith("attention/gqa-decode/", StringComparison.Ordinal));
        foreach (var check in checks)
        {
            var result = KernelChecks.Run(check, backend.Kernels, backend.Memory);
            Assert.True(result.Passed, check.Name + ": " + string.Join("\n", result.Failures));
            Assert.Null(result.Fallback);
        }
    }
}
