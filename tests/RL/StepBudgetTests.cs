using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary><see cref="StepBudget"/>: the schedule of <c>nr train</c> is a function of the step alone.</summary>
public class StepBudgetTests
{
    [Fact]
    public void WarmupCosine_RisesLinearly_ThenDecaysToATenth_AtTheLastStep()
    {
        const float peak = 2e-3f;
        // warmup 4: steps 0..3 give 1/4..4/4 of the peak.
        Assert.Equal(peak / 4, StepBudget.WarmupCosine(peak, 4, 0, 104), 9);
        Assert.Equal(peak * 3 / 4, StepBudget.WarmupCosine(peak, 4, 2, 104), 9);
        Assert.Equal(peak, StepBudget.WarmupCosine(peak, 4, 4, 104), 9);
        // With 105 steps the cosine spans steps 4..104: half way, step 54, is the mean of the peak and a tenth of it.
        Assert.Equal(peak * 0.55, StepBudget.WarmupCosine(peak, 4, 54, 105), 7);
        Assert.Equal(peak * 0.1, StepBudget.WarmupCosine(peak, 4, 103, 104), 9);
        // Past the budget (a resumed run asked for more steps) the LR stays at the floor.
        Assert.Equal(peak * 0.1, StepBudget.WarmupCosine(peak, 4, 500, 104), 9);
        // Strictly decreasing after warmup.
        for (int k = 5; k < 104; k++)
        {
            float lr = StepBudget.WarmupCosine(peak, 4, k, 104), before = StepBudget.WarmupCosine(peak, 4, k - 1, 104);
            Assert.True(lr < before, $"step {k}: {lr} ≥ {before}");
        }
    }

    [Fact]
    public void WarmupCosine_DegenerateBudgets_StayFinite()
    {
        Assert.Equal(1f, StepBudget.WarmupCosine(1f, 0, 0, 1));
        Assert.Equal(1f, StepBudget.WarmupCosine(1f, 0, 0, 0));
        Assert.Equal(0.5f, StepBudget.WarmupCosine(1f, 2, 0, 1));
        Assert.True(float.IsFinite(StepBudget.WarmupCosine(1f, 3, 3, 3)));
    }

    [Fact]
    public void Check_StepsDecide_WallTimeIsOnlyTheOuterLimit()
    {
        var b = new StepBudget(10, 2.0);
        Assert.Equal(PhaseStop.Continue, b.Check(0, TimeSpan.Zero));
        Assert.Equal(PhaseStop.Continue, b.Check(9, TimeSpan.FromMinutes(1.99)));
        Assert.Equal(PhaseStop.StepsDone, b.Check(10, TimeSpan.Zero));
        // Finishing the steps exactly at the limit is a normal end, not a hit.
        Assert.Equal(PhaseStop.StepsDone, b.Check(10, TimeSpan.FromMinutes(5)));
        Assert.Equal(PhaseStop.WallLimit, b.Check(3, TimeSpan.FromMinutes(2)));
        Assert.Equal(PhaseStop.StepsDone, new StepBudget(0, 1).Check(0, TimeSpan.Zero));
    }

    [Fact]
    public void Validate_NamesThePhaseAndTheBadValue()
    {
        var e = Assert.Throws<ArgumentException>(() => new StepBudget(-1, 5).Validate("pre-training"));
        Assert.Contains("pre-training steps", e.Message);
        Assert.Contains("-1", e.Message);
        e = Assert.Throws<ArgumentException>(() => new StepBudget(10, 0).Validate("GRPO"));
        Assert.Contains("GRPO wall-time limit", e.Message);
        Assert.Throws<ArgumentException>(() => new StepBudget(10, double.NaN).Validate("GRPO"));
    }
}
