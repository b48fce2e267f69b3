using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace NativeReasoner.RL;

/// <summary>
/// The r1-zero pipeline on an existing model directory: GRPO straight from the model with rule-based
/// rewards. Writes <c>RUN/metrics.jsonl</c>, <c>RUN/model/</c> (checkpoint + tokenizer + prompt template),
/// <c>RUN/summary.json</c> (held-out results before and after, by difficulty, and the settings) and
/// <c>RUN/samples.md</c> (greedy completions of the same held-out problems before and after).
/// </summary>
public static class R1ZeroRun
{
    public static JsonObject Run(string modelDir, string runDir, GrpoSettings settings, Action<string>? progress = null)
    {
        var task = TaskRegistry.Create(settings.Task);
        Directory.CreateDirectory(runDir);
        using var bundle = ModelBundle.Load(modelDir);
        using var reference = settings.Trainer.Beta != 0 ? ModelBundle.Load(modelDir) : null;
        var heldOut = task.Generate(Split.Test, settings.EvalProblems, settings.Trainer.Seed);
        var greedy = new Model.GenerationOptions { MaxNewTokens = settings.Trainer.MaxCompletionLength, Temperature = 0f, EosTokenIds = [bundle.Tokenizer.EosId] };
        var before = Evaluation.Run(bundle.Policy, bundle.Tokenizer, bundle.Template, task, heldOut, greedy);
        progress?.Invoke($"before: held-out accuracy {before.Accuracy:P1}, format {before.FormatRate:P0}");

        var metricsPath = Path.Combine(runDir, "metrics.jsonl");
        if (File.Exists(metricsPath)) File.Delete(metricsPath);
        var rewards = settings.Rewards(task, bundle.Template.ThinkPrefilled);
        using (var trainer = new GrpoTrainer(bundle.Policy, reference?.Policy, bundle.Tokenizer, task, rewards, bundle.Template, settings.Trainer, metricsPath))
            for (int step = 0; step < settings.Steps; step++)
            {
                var m = trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value);
                progress?.Invoke($"step {step + 1}/{settings.Steps}  reward {m["reward"]:F3}  len {m["completions/mean_length"]:F1}  " +
                                 $"zero-std {m["frac_reward_zero_std"]:F2}  {m["step_time"]:F1}s" +
                                 (m.TryGetValue("eval/accuracy", out var acc) ? $"  held-out {acc:P1}" : ""));
            }
        var after = Evaluation.Run(bundle.Policy, bundle.Tokenizer, bundle.Template, task, heldOut, greedy);
        progress?.Invoke($"after: held-out accuracy {after.Accuracy:P1}, format {after.FormatRate:P0}");
        bundle.Save(Path.Combine(runDir, "model"));

        var settingsJson = new JsonObject();
        foreach (var (name, _) in GrpoSettings.Names) settingsJson[name] = Describe(settings, name);
        var summary = new JsonObject
        {
            ["pipeline"] = "r1-zero", ["task"] = task.Name, ["steps"] = settings.Steps, ["held_out_problems"] = heldOut.Count,
            ["before"] = before.ToJson(), ["after"] = after.ToJson(), ["settings"] = settingsJson,
        };
        File.WriteAllText(Path.Combine(runDir, "summary.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(runDir, "samples.md"), Samples(heldOut, before, after));
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

    // The effective value of a setting, for summary.json.
    private static JsonNode? Describe(GrpoSettings s, string name) => name switch
    {
        "task" => s.Task, "steps" => s.Steps, "num_generations" => s.Trainer.NumGenerations, "prompts_per_step" => s.Trainer.PromptsPerStep,
        "num_iterations" => s.Trainer.NumIterations, "max_completion_length" => s.Trainer.MaxCompletionLength, "temperature" => s.Trainer.Temperature,
        "top_p" => s.Trainer.TopP, "top_k" => s.Trainer.TopK, "loss_type" => GrpoNames.Name(s.Trainer.LossType),
        "scale_rewards" => GrpoNames.Name(s.Trainer.ScaleRewards), "beta" => s.Trainer.Beta, "epsilon" => s.Trainer.EpsilonLow,
        "epsilon_high" => s.Trainer.EpsilonHigh ?? s.Trainer.EpsilonLow, "mask_truncated_completions" => s.Trainer.MaskTruncatedCompletions,
        "learning_rate" => s.Trainer.LearningRate, "weight_decay" => s.Trainer.WeightDecay, "max_grad_norm" => s.Trainer.MaxGradNorm,
        "warmup_steps" => s.Trainer.WarmupSteps, "eval_steps" => s.Trainer.EvalEvery, "eval_problems" => s.EvalProblems, "seed" => s.Trainer.Seed,
        "accuracy_weight" => s.AccuracyWeight, "format_weight" => s.FormatWeight, "charset_weight" => s.CharsetWeight, "overlong_cache" => s.OverlongCache,
        _ => null,
    };
}
