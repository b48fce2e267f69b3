// Source: DeepSeek-R1-Zero (arXiv:2501.12948) §2.2: GRPO straight from the base model.
using System.Text;
using System.Text.Json.Nodes;
using NativeReasoner.Distributed;

namespace NativeReasoner.RL;

/// <summary>
/// The r1-zero pipeline on an existing model directory: GRPO straight from the model with rule-based
/// rewards. Writes <c>RUN/metrics.jsonl</c>, <c>RUN/model/</c> (checkpoint + tokenizer + prompt template),
/// <c>RUN/summary.json</c> (held-out results before and after, by difficulty, and the settings) and
/// <c>RUN/samples.md</c> (greedy completions of the same held-out problems before and after). Crash-safe: GRPO
/// checkpoints go to <c>RUN/checkpoints/</c> (<see cref="LoopCheckpoints"/>) and a rerun resumes from the newest valid
/// one; a finished run shows its summary; another configuration's directory is refused unless told to overwrite.
/// Given a process group of several ranks, GRPO is distributed and rank 0 alone writes and reports.
/// </summary>
public static class R1ZeroRun
{
    public static JsonObject Run(string modelDir, string runDir, GrpoSettings settings, Action<string>? progress = null,
        CrashSafety? safety = null, IProcessGroup? group = null)
    {
        safety ??= new CrashSafety();
        bool root = PipelineStages.IsRoot(group);
        if (!root) progress = null;
        var task = TaskRegistry.Create(settings.Task);
        var identity = new JsonObject
        {
            ["pipeline"] = "r1-zero", ["model"] = Path.GetFullPath(modelDir), ["settings"] = settings.ToJson(),
        };
        if (PipelineStages.Claim(runDir, identity, safety, progress, group) is { } finished) return finished;
        var checkpoints = new LoopCheckpoints(runDir, safety, progress, group: group);
        using var bundle = ModelBundle.Load(modelDir);
        var heldOut = task.Generate(Split.Test, settings.EvalProblems, settings.Trainer.Seed);
        var before = PipelineStages.Evaluate(bundle, task, heldOut, settings);
        progress?.Invoke($"before: held-out accuracy {before.Accuracy:P1}, format {before.FormatRate:P0}");
        PipelineStages.Grpo(bundle, modelDir, task, settings, settings.Steps, Path.Combine(runDir, "metrics.jsonl"),
            progress, checkpoints, group);
        var after = PipelineStages.Evaluate(bundle, task, heldOut, settings);
        progress?.Invoke($"after: held-out accuracy {after.Accuracy:P1}, format {after.FormatRate:P0}");
        if (root) bundle.Save(Path.Combine(runDir, "model"));

        var summary = new JsonObject
        {
            ["pipeline"] = "r1-zero", ["task"] = task.Name, ["steps"] = settings.Steps, ["held_out_problems"] = heldOut.Count,
            ["before"] = before.ToJson(), ["after"] = after.ToJson(), ["settings"] = settings.ToJson(),
        };
        if (root) File.WriteAllText(Path.Combine(runDir, "samples.md"), Samples(heldOut, before, after));
        PipelineStages.WriteSummary(runDir, summary, group);
        checkpoints.Clear();
        return summary;
    }

    private static string Samples(IReadOnlyList<Problem> problems, EvalReport before, EvalReport after)
    {
        var sb = new StringBuilder("# Held-out completions before and after GRPO (greedy)\n");
        for (int i = 0; i < Math.Min(problems.Count, 12); i++)
        {
            sb.Append($"\n## {problems[i].Prompt} (difficulty {problems[i].Difficulty}, answer {problems[i].Answer})\n\n");
            sb.Append("before:\n\n```\n").Append(before.Completions[i]).Append("\n```\n\nafter:\n\n```\n").Append(after.Completions[i]).Append("\n```\n");
        }
        return sb.ToString();
    }
}
