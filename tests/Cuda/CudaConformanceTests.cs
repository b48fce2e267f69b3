using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Kernels.Verification;
using Xunit;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// Every kernel check (<see cref="KernelChecks"/>) on the CUDA backend: on the CPU emulator everywhere the
/// emulator is built (CI), and on the GPU where one is present (skipped with the reason otherwise).
/// </summary>
public sealed class CudaConformanceTests
{
    public static IEnumerable<object[]> Checks => KernelChecks.All.Select(c => new object[] { c.Name });

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Checks))]
    public void Emulator(string check) => Pass(CudaBackend.Emulator, check);

    /// <summary>
    /// The same checks with the emulator resuming threads in reverse and in random order between barriers: a
    /// missing __syncthreads/__syncwarp that the forward order happens to hide (writer before reader) shows here.
    /// </summary>
    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Checks))]
    public void EmulatorOtherSchedules(string check)
    {
        var b = CudaBackend.Emulator;
        try
        {
            b.SetEmulatorSchedule(EmulatorSchedule.Reverse);
            Pass(b, check);
            b.SetEmulatorSchedule(EmulatorSchedule.Random, seed: (ulong)check.GetHashCode() | 1);
            Pass(b, check);
        }
        finally
        {
            b.SetEmulatorSchedule(EmulatorSchedule.Forward);
        }
    }

    [CudaTheory(CudaRuntimeKind.Gpu)]
    [MemberData(nameof(Checks))]
    public void Gpu(string check) => Pass(CudaBackend.Gpu, check);

    private static void Pass(CudaBackend backend, string check)
    {
        var r = KernelChecks.Run(KernelChecks.Get(check), backend.Kernels, backend.Memory);
        Assert.True(r.Passed, $"{check} on {backend.Kernels.Name}:\n  " + string.Join("\n  ", r.Failures));
    }

    [Fact]
    public void EveryCheckAlsoPassesOnTheCpuBackend()
    {
        // The suite itself is checked: the fast CPU backend must pass it, so a failing CUDA check means CUDA.
        var failures = new List<string>();
        foreach (var c in KernelChecks.All)
        {
            var r = KernelChecks.Run(c, global::NativeReasoner.Kernels.Cpu.CpuKernels.Instance, global::NativeReasoner.Kernels.Memory.HostMemory.Instance);
            if (!r.Passed) failures.Add($"{c.Name}: {string.Join("; ", r.Failures)}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
