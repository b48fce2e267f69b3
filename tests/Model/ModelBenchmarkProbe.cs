using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Model;

/// <summary>Runs the bench-tiny throughput probes only when NR_MODEL_BENCH=1 (they take seconds).</summary>
public sealed class ModelBenchmarkProbe(ITestOutputHelper output)
{
    [Fact]
    public void BenchTinyThroughput()
    {
        if (Environment.GetEnvironmentVariable("NR_MODEL_BENCH") != "1") return;
        var c = DeepseekV3Config.Preset("bench-tiny");
        var (dec, bytes) = ModelBenchmark.DecodeTokensPerSecond(c, 16, 32, 96);
        output.WriteLine($"bench-tiny decode, batch 16: {dec:F0} tokens/s; cache {bytes} bytes/token");
        double train = ModelBenchmark.TrainingTokensPerSecond(c, 16, 128, steps: 3);
        output.WriteLine($"bench-tiny training step, 16 x 128: {train:F0} tokens/s");
    }
}
