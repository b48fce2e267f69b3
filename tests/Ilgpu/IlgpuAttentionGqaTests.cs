using NativeReasoner.Kernels.Ilgpu;
using NativeReasoner.Kernels.Verification;
using NativeReasoner.Tests.Kernels;
using Xunit;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>The grouped-query attention checks of the conformance suite (attention/gqa/*) on ILGPU.</summary>
public sealed class IlgpuAttentionGqaTests
{
    public static IEnumerable<object[]> Checks => AttentionGqaConformanceTests.Checks;

    [Theory]
    [MemberData(nameof(Checks))]
    public void Ilgpu(string check)
    {
        var backend = IlgpuBackend.Shared;
        var r = KernelChecks.Run(KernelChecks.Get(check), backend.Kernels, backend.Memory);
        Assert.True(r.Passed, $"{check} on {backend.Kernels.Name}:\n  " + string.Join("\n  ", r.Failures));
    }
}
