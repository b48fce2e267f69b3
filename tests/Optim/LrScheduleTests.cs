using NativeReasoner.Optim;
using Xunit;

namespace NativeReasoner.Tests.Optim;

public sealed class LrScheduleTests
{
    [Fact]
    public void Constant()
    {
        var s = new ConstantLr(3e-4f);
        Assert.Equal(3e-4f, s.LearningRate(0));
        Assert.Equal(3e-4f, s.LearningRate(100_000));
    }

    [Fact]
    public void Linear_Warmup_Then_Flat()
    {
        var s = new LinearWarmup(1e-3f, 4);
        Assert.Equal(0.25e-3f, s.LearningRate(0), 9);
        Assert.Equal(0.5e-3f, s.LearningRate(1), 9);
        Assert.Equal(1e-3f, s.LearningRate(3), 9);
        Assert.Equal(1e-3f, s.LearningRate(4), 9);
        Assert.Equal(1e-3f, s.LearningRate(1000), 9);
        Assert.Equal(1e-3f, new LinearWarmup(1e-3f, 0).LearningRate(0), 9);
    }

    [Fact]
    public void Cosine_Decay_At_Key_Steps()
    {
        const float baseLr = 1e-2f;
        var s = new CosineDecay(baseLr, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1f);
        // Warmup: base·(step+1)/warmup.
        Assert.Equal(1e-3f, s.LearningRate(0), 9);
        Assert.Equal(5e-3f, s.LearningRate(4), 9);
        Assert.Equal(1e-2f, s.LearningRate(9), 9);
        // Decay: progress = (step − 10)/100; lr = base·(0.1 + 0.9·0.5·(1 + cos(π·progress))).
        Assert.Equal(1e-2f, s.LearningRate(10), 9);
        Assert.Equal(baseLr * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * 0.25))), s.LearningRate(35), 8);
        Assert.Equal(baseLr * 0.55, s.LearningRate(60), 8);
        Assert.Equal(baseLr * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * 0.99))), s.LearningRate(109), 8);
        // The floor from total steps on.
        Assert.Equal(1e-3f, s.LearningRate(110), 9);
        Assert.Equal(1e-3f, s.LearningRate(5000), 9);
    }

    [Fact]
    public void Cosine_Decay_Without_Warmup_And_Degenerate_Total()
    {
        var s = new CosineDecay(2f, warmupSteps: 0, totalSteps: 4, minLrRatio: 0f);
        Assert.Equal(2f, s.LearningRate(0), 6);
        Assert.Equal(1f, s.LearningRate(2), 6);
        Assert.Equal(0f, s.LearningRate(4), 6);
        // total ≤ warmup: max(1, ·) keeps it defined; the floor right after warmup.
        var d = new CosineDecay(1f, warmupSteps: 5, totalSteps: 5, minLrRatio: 0.2f);
        Assert.Equal(1f, d.LearningRate(4), 6);
        Assert.Equal(1f, d.LearningRate(5), 6);
        Assert.Equal(0.2f, d.LearningRate(6), 6);
    }
}
