using NativeReasoner.Model;
using Xunit;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The throughput probes behind `nr bench model` (the numbers themselves are not checked: a shared CPU times
/// nothing meaningful in a test): they run the requested steps after the requested warm-up, report consistent
/// figures, and refuse nonsense arguments with a message that names them.
/// </summary>
public sealed class ModelBenchmarkTests
{
    [Fact]
    public void TrainingProbeWarmsUpThenTimesTheSteps()
    {
        var c = DeepseekV3Config.Preset("tiny");
        var r = ModelBenchmark.MeasureTraining(c, batch: 2, seq: 8, steps: 3, warmupSteps: 2, warmupSeconds: 0);
        Assert.Equal(3, r.Steps);
        Assert.Equal(2, r.WarmupSteps);
        Assert.True(r.MedianMs > 0 && double.IsFinite(r.MedianMs));
        Assert.True(r.BestMs > 0 && r.BestMs <= r.MedianMs);
        Assert.Equal(2 * 8 / (r.MedianMs / 1e3), r.TokensPerSecond, 6);
    }

    [Fact]
    public void DecodeProbeReportsTheBestRun()
    {
        var c = DeepseekV3Config.Preset("tiny");
        var r = ModelBenchmark.MeasureDecode(c, batch: 3, prompt: 4, newTokens: 5, rounds: 2, warmupSeconds: 0);
        Assert.Equal(1, r.WarmupRuns);
        Assert.Equal(2, r.Rounds);
        Assert.Equal(4, r.Steps); // the first new token comes from the prefill
        Assert.True(r.MsPerStep > 0 && double.IsFinite(r.MsPerStep));
        Assert.Equal(3 / (r.MsPerStep / 1e3), r.TokensPerSecond, 6);
        Assert.Equal(MlaCache.BytesPerTokenFor(c), r.CacheBytesPerToken);
    }

    [Fact]
    public void NonsenseArgumentsAreRefusedByName()
    {
        var c = DeepseekV3Config.Preset("tiny");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ModelBenchmark.MeasureTraining(c, 2, 8, steps: 0, warmupSteps: 0, warmupSeconds: 0));
        Assert.Contains("steps", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => ModelBenchmark.MeasureDecode(c, 2, 4, newTokens: 1, rounds: 1, warmupSeconds: 0));
        Assert.Contains("new tokens", e.Message);
    }
}
