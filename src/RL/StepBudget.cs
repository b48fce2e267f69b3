// Source: a warmup + cosine schedule as transformers' get_cosine_schedule_with_warmup, as a function of the step.
namespace NativeReasoner.RL;

/// <summary>Why a training phase stopped (or that it goes on).</summary>
public enum PhaseStop
{
    /// <summary>Neither budget is spent: take another step.</summary>
    Continue,
    /// <summary>The planned steps are done: the normal end, the same on every machine.</summary>
    StepsDone,
    /// <summary>The outer wall-time limit was hit first: the schedule did not finish; reported, never silent.</summary>
    WallLimit,
}

/// <summary>
/// The budget of one phase of <c>nr train</c>: a number of steps, which alone sets the schedule (learning
/// rate, data, evaluation cadence), and an outer wall-time limit that only guards against a machine far slower
/// than planned. Because the schedule never reads the clock, the same seed gives the same model on a fast or a
/// slow machine; only a hit wall limit changes the result, and that is reported in the output and summary.json.
/// </summary>
public sealed record StepBudget(int Steps, double MaxMinutes)
{
    /// <summary>Validates the budget; errors name the option.</summary>
    public StepBudget Validate(string phase)
    {
        if (Steps < 0) throw new ArgumentException($"{phase} steps must be ≥ 0, got {Steps}");
        if (!(MaxMinutes > 0))
            throw new ArgumentException($"{phase} wall-time limit must be > 0 minutes, got {MaxMinutes}");
        return this;
    }

    /// <summary>
    /// Whether to take step <paramref name="done"/> (0-based, steps already done before it): the step budget
    /// is checked first, so a run that finishes its steps exactly at the limit counts as finished.
    /// </summary>
    public PhaseStop Check(int done, TimeSpan elapsed)
    {
        if (done >= Steps) return PhaseStop.StepsDone;
        return elapsed.TotalMinutes >= MaxMinutes ? PhaseStop.WallLimit : PhaseStop.Continue;
    }

    /// <summary>
    /// Learning rate of step <paramref name="step"/> (0-based): linear warmup over <paramref name="warmup"/> steps
    /// to <paramref name="peak"/>, then a cosine to a tenth of the peak at the last step of the budget. A pure
    /// function of the step.
    /// </summary>
    public static float WarmupCosine(float peak, int warmup, int step, int totalSteps)
    {
        if (step < warmup) return peak * (step + 1) / warmup;
        // Progress 0 at the first step after warmup, 1 at the last step.
        double span = Math.Max(1, totalSteps - 1 - warmup);
        double progress = Math.Clamp((step - warmup) / span, 0, 1);
        return (float)(peak * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * progress))));
    }
}
