using NativeReasoner.Kernels.Cpu;
using Xunit;

namespace NativeReasoner.Tests.Kernels;

/// <summary>The bandwidth probes behind the compare script's decode bound: positive finite rates, clear errors.
/// </summary>
public sealed class HostCopyBandwidthTests
{
    [Fact]
    public void ReadAndCopyRatesArePositiveAndFinite()
    {
        double read = HostCopyBandwidth.MeasureRead((8L << 20) + 100, 2);
        var (copyRead, copy) = HostCopyBandwidth.Measure(8L << 20, 2);
        foreach (double rate in new[] { read, copyRead, copy })
            Assert.True(double.IsFinite(rate) && rate > 0.01, $"rate {rate} GB/s");
        Assert.Equal(2 * copyRead, copy, 6);
    }

    [Fact]
    public void BadSizesAreClearErrors()
    {
        var small = Assert.Throws<ArgumentOutOfRangeException>(() => HostCopyBandwidth.MeasureRead(8, 1));
        Assert.Contains("64 bytes", small.Message);
        var noPass = Assert.Throws<ArgumentOutOfRangeException>(() => HostCopyBandwidth.MeasureRead(1 << 20, 0));
        Assert.Contains("at least one", noPass.Message);
        var empty = Assert.Throws<ArgumentOutOfRangeException>(() => HostCopyBandwidth.Measure(0, 1));
        Assert.Contains("one byte", empty.Message);
    }
}
