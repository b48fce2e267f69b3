// Source: DeepSeek-R1-Zero (arXiv:2501.12948) §2.2 — RL from a base model that was never shown the answer format.
namespace NativeReasoner.RL;

/// <summary>
/// The pre-training data of <c>nr train</c>, step by step. By default a share
/// (<see cref="TrainSettings.ThinkFraction"/>) of the answers carry a &lt;think&gt; trace and the rest are direct.
/// In the R1-Zero variant (<see cref="TrainSettings.R1Zero"/>) no answer ever thinks: every question gets a direct
/// answer, and the same share of the batch is instead plain worked steps, a separate kind of document with no
/// question, no tags and no boxed answer. Whether GRPO with accuracy + format rewards then discovers that writing
/// steps inside &lt;think&gt; before answering pays is the experiment.
/// </summary>
public static class PretrainCorpus
{
    /// <summary>The prompt of a worked-steps document: a notebook of calculations, not a question.</summary>
    public const string WorkedStepsPrompt = "Worked steps:";

    /// <summary>
    /// The batch of pre-training step <paramref name="step"/>: everything it draws is seeded by the step, so a
    /// resumed run sees the data of an uninterrupted one.
    /// </summary>
    public static SftExample[] Batch(VerifiableTask task, TrainSettings s, int step)
    {
        var workedChoice = new Generator(s.Seed + 99 + (ulong)step * 7919UL);
        var problems = task.Generate(Split.Train, s.PretrainBatch, s.Seed + 1000 + (ulong)step);
        var batch = new SftExample[problems.Count];
        for (int i = 0; i < problems.Count; i++)
        {
            bool worked = workedChoice.NextDouble() < s.ThinkFraction;
            batch[i] = !worked ? ThinkTraces.Example(problems[i], think: false)
                : s.R1Zero ? WorkedSteps(problems[i]) : ThinkTraces.Example(problems[i], think: true);
        }
        return batch;
    }

    /// <summary>A problem's worked steps as a plain document: <c>47*6,7*6=42,40*6=240,240+42=282</c>.</summary>
    public static SftExample WorkedSteps(Problem p) =>
        new(WorkedStepsPrompt, ThinkTraces.Trace(p), Answer: null, Difficulty: p.Difficulty);
}
