using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Kernels.Ilgpu;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;
using NativeReasoner.Kernels.Verification;
using NativeReasoner.Tests.Cuda;
using Xunit;

namespace NativeReasoner.Tests.Verification;

/// <summary>
/// The one backend conformance suite: every check of <see cref="KernelChecks"/> on every backend, one theory per
/// backend so that a backend that cannot open here is skipped with its reason (xunit 2 skips whole theories):
/// the reference against itself (the checks' own expectations), the CPU backend, the CUDA backend on its CPU
/// emulator under the forward, reverse and random thread schedules, ILGPU on its CPU accelerator, and CUDA on a
/// real GPU where one is present. `nr check --device NAME` runs the same checks.
/// </summary>
public sealed class BackendConformanceTests
{
    public static IEnumerable<object[]> Checks => KernelChecks.All.Select(c => new object[] { c.Name });

    [Theory]
    [MemberData(nameof(Checks))]
    public void Reference(string check) => Pass(ReferenceKernels.Instance, HostMemory.Instance, check);

    [Theory]
    [MemberData(nameof(Checks))]
    public void Cpu(string check) => Pass(CpuKernels.Instance, HostMemory.Instance, check);

    /// <summary>
    /// The first check of every family (the name up to its last '/'): every op and code path of the ILGPU backend
    /// at a small size. ILGPU's CPU accelerator runs each GPU thread as managed code, so the whole suite takes the
    /// best part of an hour on two cores; <c>nr check --device ilgpu</c> runs all of it.
    /// </summary>
    public static IEnumerable<object[]> IlgpuChecks =>
        KernelChecks.All.GroupBy(c => c.Name[..Math.Max(0, c.Name.LastIndexOf('/'))])
            .Select(g => new object[] { g.First().Name });

    [Theory]
    [MemberData(nameof(IlgpuChecks))]
    public void Ilgpu(string check) => Pass(IlgpuBackend.Shared.Kernels, IlgpuBackend.Shared.Memory, check);

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Checks))]
    public void CudaEmulator(string check) => Pass(CudaBackend.Emulator.Kernels, CudaBackend.Emulator.Memory, check);

    /// <summary>
    /// The emulator resuming threads in reverse and in random order between barriers: a missing
    /// __syncthreads/__syncwarp that the forward order happens to hide (writer before reader) shows here.
    /// </summary>
    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Checks))]
    public void CudaEmulatorOtherSchedules(string check)
    {
        var b = CudaBackend.Emulator;
        try
        {
            b.SetEmulatorSchedule(EmulatorSchedule.Reverse);
            Pass(b.Kernels, b.Memory, check);
            b.SetEmulatorSchedule(EmulatorSchedule.Random, seed: (ulong)check.GetHashCode() | 1);
            Pass(b.Kernels, b.Memory, check);
        }
        finally
        {
            b.SetEmulatorSchedule(EmulatorSchedule.Forward);
        }
    }

    [CudaTheory(CudaRuntimeKind.Gpu)]
    [MemberData(nameof(Checks))]
    public void CudaGpu(string check) => Pass(CudaBackend.Gpu.Kernels, CudaBackend.Gpu.Memory, check);

    private static void Pass(IKernels kernels, IDeviceMemory memory, string check)
    {
        var r = KernelChecks.Run(KernelChecks.Get(check), kernels, memory);
        Assert.True(r.Passed, $"{check} on {kernels.Name}:\n  " + string.Join("\n  ", r.Failures));
    }

    [Fact]
    public void EveryFamilyHasChecks()
    {
        // A family whose Add* method stopped registering would otherwise pass silently.
        string[] families =
        [
            "memory/", "attention/gqa/forward/", "attention/gqa/backward/", "attention/gqa-decode/", "gemm/",
            "optim/sgd/", "optim/adamw",
        ];
        foreach (var f in families)
            Assert.True(KernelChecks.All.Any(c => c.Name.StartsWith(f, StringComparison.Ordinal)),
                $"no kernel check starts with {f}");
        Assert.Contains(KernelChecks.All, c => c.Name.StartsWith("attention/gqa/forward/", StringComparison.Ordinal)
                                              && c.Name.Contains("-g7-"));
        Assert.Contains(KernelChecks.All, c => c.Name.StartsWith("attention/gqa/backward/", StringComparison.Ordinal)
                                              && c.Name.Contains("-g3-"));
    }
}
