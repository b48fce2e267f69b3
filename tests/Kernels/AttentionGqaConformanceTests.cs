using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;
using NativeReasoner.Kernels.Verification;
using Xunit;

namespace NativeReasoner.Tests.Kernels;

/// <summary>
/// The grouped-query attention checks of the conformance suite (attention/gqa/*) on the reference backend (its
/// head mapping against its own multi-head attention on repeated K/V) and on the CPU backend, and the batched
/// decode against per-sequence caches (attention/gqa-decode/*, a capability of these two backends). CUDA runs
/// the suite in CudaConformanceTests (emulator and GPU), ILGPU runs attention/gqa/* in IlgpuAttentionGqaTests.
/// </summary>
public sealed class AttentionGqaConformanceTests
{
    public static IEnumerable<object[]> Checks => GqaCheckNames().Select(n => new object[] { n });

    public static IEnumerable<object[]> HostChecks =>
        GqaCheckNames().Concat(Named("attention/gqa-decode/")).Select(n => new object[] { n });

    internal static IEnumerable<string> GqaCheckNames() => Named("attention/gqa/");

    private static IEnumerable<string> Named(string prefix) =>
        KernelChecks.All.Where(c => c.Name.StartsWith(prefix, StringComparison.Ordinal)).Select(c => c.Name);

    [Fact]
    public void TheSuiteHasGqaForwardAndBackwardChecks()
    {
        var names = GqaCheckNames().ToList();
        Assert.Contains(names, n => n.StartsWith("attention/gqa/forward/", StringComparison.Ordinal)
                                    && n.Contains("-g7-"));
        Assert.Contains(names, n => n.StartsWith("attention/gqa/backward/", StringComparison.Ordinal)
                                    && n.Contains("-g3-"));
        Assert.True(names.Count >= 30, $"only {names.Count} attention/gqa checks");
        Assert.True(Named("attention/gqa-decode/").Count() >= 5, "the attention/gqa-decode checks are missing");
    }

    [Theory]
    [MemberData(nameof(HostChecks))]
    public void Reference(string check) => Pass(ReferenceKernels.Instance, check);

    [Theory]
    [MemberData(nameof(HostChecks))]
    public void Cpu(string check) => Pass(CpuKernels.Instance, check);

    private static void Pass(NativeReasoner.Kernels.IKernels kernels, string check)
    {
        var r = KernelChecks.Run(KernelChecks.Get(check), kernels, HostMemory.Instance);
        Assert.True(r.Passed, $"{check} on {kernels.Name}:\n  " + string.Join("\n  ", r.Failures));
    }
}
