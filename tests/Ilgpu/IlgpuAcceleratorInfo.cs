using NativeReasoner.Kernels.Ilgpu;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>Says which accelerator the ILGPU tests ran on (visible in the test log).</summary>
public class IlgpuAcceleratorInfo(ITestOutputHelper output)
{
    [Fact]
    public void ReportsAccelerator()
    {
        var b = IlgpuBackend.Shared;
        output.WriteLine($"ILGPU tests run on {b.Description}");
        Console.WriteLine($"[ilgpu] tests run on {b.Description}");
        Assert.False(b.Memory.IsHost);
    }
}
