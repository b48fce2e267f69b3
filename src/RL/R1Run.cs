// Source: DeepSeek-R1 (arXiv:2501.12948) §2.3 (cold start → RL → rejection sampling + SFT → RL).
using System.Text.Json.Nodes;
using NativeReasoner.Distributed;

namespace NativeReasoner.RL;

/// <summary>
/// The r1 pipeline (DeepSeek-R1's recipe at small scale) on a model directory, one directory per stage
/// under the run directory, each with its <c>model/</c>, <c>metrics.jsonl</c> and <c>stage.json</c>:
/// <list type="number">
/// <item><c>1_cold_start_sft</c>: SFT on worked solutions (<see cref="ThinkTraces"/>, written to <c>cold_start.jsonl</c>);</item>
/// <item><c>2_grpo</c>: GRPO on rule-based rewards;</item>
/// <item><c>3_rejection_sft</c>: rejection sampling from the RL model (verified-correct, well-formed completions,
/// <c>rejection_samples.jsonl</c>), then SFT on them;</item>
/// <item><c>4_grpo</c>: GRPO again.</item>
/// </list>
/// The final model is also saved to <c>RUN/model/</c>; <c>RUN/summary.json</c> holds the held-out results
/// before and after each stage. A rerun skips the stages whose <c>stage.json</c> exists and resumes the stage under
/// way from its newest checkpoint (<see cref="LoopCheckpoints"/>); a finished run shows its summary; a run directory
/// of another configuration is refused unless <see cref="CrashSafety.Overwrite"/>. Given a process group of several
/// ranks, every stage is distributed (<see cref="PipelineStages"/>) and rank 0 alone writes and reports.
/// </summary>
public static class R1Run
{
    public static readonly string[] StageNames = ["1_cold_start_sft", "2_grpo", "3_rejection_sft", "4_grpo"];

    public static JsonObject Run(string modelDir, string runDir, PipelineSettings settings,
        Action<string>? progress = null, CrashSafety? safety = null, IProcessGroup? group = null)
    {
        safety ??= new CrashSafety();
        bool root = PipelineStages.IsRoot(group);
        if (!root) progress = null;
        var g = settings.Grpo;
        var task = TaskRegistry.Create(g.Task);
        // Checked before any work: the cold start needs worked solutions for the task.
        if (!ThinkTraces.Supports(task.Name))
            throw new ArgumentException($"the r1 pipeline's cold start needs worked solutions, which task '{task.Name}' has none of; use arithmetic, ladder, linear or word");
        var identity = new JsonObject
        {
            ["pipeline"] = "r1", ["model"] = Path.GetFullPath(modelDir), ["settings"] = settings.ToJson(),
        };
        if (PipelineStages.Claim(runDir, identity, safety, progress, group) is { } finished) return finished;
        LoopCheckpoints Checkpoints(string dir) => new(dir, safety, progress, group: group);
        var b = ModelBundle.Load(modelDir);
        try
        {
            var heldOut = task.Generate(Split.Test, g.EvalProblems, g.Trainer.Seed);
            var before = PipelineStages.Evaluate(b, task, heldOut, g);
            progress?.Invoke($"base model: held-out accuracy {before.Accuracy:P1}, format {before.FormatRate:P0}");
            ulong seed = g.Trainer.Seed;
            var stages = new JsonArray();
            // Each GRPO stage's frozen reference (β ≠ 0) is the model it starts from: the previous stage's output.
            string Input(int stage) => stage == 0 ? modelDir : Path.Combine(runDir, StageNames[stage - 1], "model");

            stages.Add(PipelineStages.Stage(runDir, StageNames[0], ref b, task, heldOut, g, dir =>
            {
                var data = task.Generate(Split.Train, settings.ColdStartExamples, seed + 0xC01D)
                    .Select(p => ThinkTraces.Example(p, think: true)).ToArray();
                if (root) SftData.WriteJsonl(Path.Combine(dir, "cold_start.jsonl"), data);
                var r = PipelineStages.Sft(b, data, settings, Path.Combine(dir, "metrics.jsonl"), seed + 1, progress,
                    Checkpoints(dir), group);
                r["data"] = "cold_start.jsonl";
                return r;
            }, progress, group));
            stages.Add(PipelineStages.Stage(runDir, StageNames[1], ref b, task, heldOut, g, dir =>
                PipelineStages.Grpo(b, Input(1), task, g, g.Steps, Path.Combine(dir, "metrics.jsonl"), progress,
                    Checkpoints(dir), group), progress, group));
            stages.Add(PipelineStages.Stage(runDir, StageNames[2], ref b, task, heldOut, g, dir =>
            {
                var (kept, stats) = PipelineStages.Rejection(b.Policy, b.Tokenizer, b.Template, task, settings, seed + 0x5A3,
                    Path.Combine(dir, "rejection_samples.jsonl"), progress, group);
                stats["sft"] = PipelineStages.Sft(b, kept, settings, Path.Combine(dir, "metrics.jsonl"), seed + 3,
                    progress, Checkpoints(dir), group);
                return stats;
            }, progress, group));
            // A different seed from stage 2, so the second RL stage sees new problems.
            var g2 = g with { Trainer = g.Trainer with { Seed = seed + 1_000_003 } };
            stages.Add(PipelineStages.Stage(runDir, StageNames[3], ref b, task, heldOut, g, dir =>
                PipelineStages.Grpo(b, Input(3), task, g2, settings.SecondRlSteps, Path.Combine(dir, "metrics.jsonl"),
                    progress, Checkpoints(dir), group), progress, group));

            if (root) b.Save(Path.Combine(runDir, "model"));
            var summary = new JsonObject
            {
                ["pipeline"] = "r1", ["task"] = task.Name, ["base_model"] = Path.GetFullPath(modelDir), ["held_out_problems"] = heldOut.Count,
                ["before"] = before.ToJson(), ["stages"] = stages,
                ["after"] = stages[^1]!["held_out_after"]!.DeepClone(), ["settings"] = settings.ToJson(),
            };
            PipelineStages.WriteSummary(runDir, summary, group);
            return summary;
        }
        finally { b.Dispose(); }
    }
}
