using NativeReasoner.Model;
using NativeReasoner.RL;
using NativeReasoner.Tests.RL;
using Xunit;

namespace NativeReasoner.Tests.Reliability;

/// <summary>
/// Out of memory is refused up front: a training batch whose step cannot fit gives an error naming the setting and
/// the most that fits, before the run directory is touched, instead of an allocation the kernel kills the process for.
/// </summary>
public class HugeBatchTests
{
    [Fact]
    public void CheckBatchFits_NamesTheSettingAndTheLimit_AndPassesWhatFits()
    {
        var config = DeepseekV3Config.Preset("tiny") with { VocabSize = 64 };
        // Per row of 100 tokens: 100 × (3 × 64 + 4 × layers × hidden) floats.
        double perRow = TrainingMemory.StepLowerBoundBytes(config, 1, 100);
        Assert.Equal(100.0 * (3 * 64 + 4 * config.NumHiddenLayers * config.HiddenSize) * 4, perRow);
        long available = (long)(perRow * 1000);
        TrainingMemory.CheckBatchFits("--pretrain-batch", 1000, config, 100, available);
        var e = Assert.Throws<ArgumentException>(() =>
            TrainingMemory.CheckBatchFits("--pretrain-batch", 1001, config, 100, available));
        Assert.StartsWith("--pretrain-batch 1001 does not fit in memory", e.Message);
        Assert.Contains("lower --pretrain-batch to at most 1000", e.Message);
    }

    [Fact]
    public void TrainWithAHugePretrainBatch_RefusedBeforeTheRunDirectoryIsWritten()
    {
        var runs = Path.Combine(Path.GetTempPath(), "nr-huge-" + Guid.NewGuid().ToString("N"));
        var s = TrainPipelineTests.Toy(runs) with { PretrainBatch = int.MaxValue };
        var e = Assert.Throws<ArgumentException>(() => TrainPipeline.Run(s, _ => { }));
        Assert.Contains("--pretrain-batch 2147483647 does not fit in memory", e.Message);
        Assert.False(Directory.Exists(runs));
    }

    [Fact]
    public void NrTrainWithAHugePretrainBatch_PrintsOneErrorLine_ExitCode1()
    {
        var runs = Path.Combine(Path.GetTempPath(), "nr-huge-" + Guid.NewGuid().ToString("N"));
        var r = KillTests.RunNr(["train", "--name", "huge", "--runs-dir", runs, "--model-preset", "tiny",
            "--pretrain-batch", "2000000000"], null);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("nr train: --pretrain-batch 2000000000 does not fit in memory", r.Output);
        Assert.DoesNotContain("Unhandled exception", r.Output);
        Assert.DoesNotContain("   at ", r.Output);
        Assert.False(Directory.Exists(runs));
    }
}
