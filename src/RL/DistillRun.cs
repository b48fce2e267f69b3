// Source: DeepSeek-R1 (arXiv:2501.12948) §2.4 distillation: SFT of a smaller model on the teacher's verified traces.
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReasoner.Distributed;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>
/// The distill pipeline: a teacher answers training problems (<c>rejection_samples</c> per problem; only
/// verified-correct, well-formed traces are kept, written to <c>RUN/teacher_traces.jsonl</c>), and a smaller
/// student — a fresh model of any family from a preset or a config.json, with the teacher's tokenizer and prompt
/// template — is trained on them by SFT. Writes <c>RUN/student/</c> (HF layout + tokenizer + prompt
/// template), <c>RUN/metrics.jsonl</c> (SFT loss) and <c>RUN/summary.json</c> (held-out results of the
/// teacher, and of the student before and after). Crash-safe: the student's SFT checkpoints go to
/// <c>RUN/checkpoints/</c> (<see cref="LoopCheckpoints"/>; the teacher's traces are sampled again, from the same seed,
/// on a resume); a finished run shows its summary; another configuration's directory is refused unless told to.
/// Given a process group of several ranks, the teacher's sampling is split over them and the SFT is data-parallel;
/// rank 0 alone writes and reports.
/// </summary>
public static class DistillRun
{
    public static JsonObject Run(string teacherDir, string studentConfig, string runDir, PipelineSettings settings,
        Action<string>? progress = null, CrashSafety? safety = null, IProcessGroup? group = null)
    {
        var task = TaskRegistry.Create(settings.Grpo.Task);
        var config = ResolveStudentConfig(studentConfig);
        using var teacher = ModelBundle.Load(teacherDir);
        var teacherJson = new JsonObject { ["model"] = Path.GetFullPath(teacherDir), ["parameters"] = teacher.Policy.Parameters().Sum(p => (long)p.Numel) };
        return Run(teacher.Policy, teacher.Tokenizer, teacher.Template, teacherJson, config, runDir, settings, progress,
            task, safety, group);
    }

    /// <summary>The run with the teacher given as a policy (any <see cref="IPolicy"/>: tests use scripted ones).</summary>
    public static JsonObject Run(IPolicy teacher, ITokenizer tokenizer, PromptTemplate template, JsonObject teacherInfo, ICausalLMConfig studentConfig,
        string runDir, PipelineSettings settings, Action<string>? progress = null, VerifiableTask? task = null,
        CrashSafety? safety = null, IProcessGroup? group = null)
    {
        safety ??= new CrashSafety();
        if (!PipelineStages.IsRoot(group)) progress = null;
        var g = settings.Grpo;
        task ??= TaskRegistry.Create(g.Task);
        var identity = new JsonObject
        {
            ["pipeline"] = "distill", ["teacher"] = teacherInfo["model"]?.DeepClone(),
            ["student"] = JsonSerializer.SerializeToNode(studentConfig, studentConfig.GetType(), IdentityJson),
            ["settings"] = settings.ToJson(),
        };
        if (PipelineStages.Claim(runDir, identity, safety, progress, group) is { } finished) return finished;
        ulong seed = g.Trainer.Seed;
        var heldOut = task.Generate(Split.Test, g.EvalProblems, seed);

        var (kept, traces) = PipelineStages.Rejection(teacher, tokenizer, template, task, settings, TraceSeed(settings),
            Path.Combine(runDir, "teacher_traces.jsonl"), progress, group);
        if (kept.Count == 0)
            progress?.Invoke("warning: the teacher solved none of the training problems; the student is saved untrained (raise rejection_samples or use a stronger teacher)");
        var teacherEval = Evaluation.Run(teacher, tokenizer, template, task, heldOut, PipelineStages.Greedy(tokenizer, g));
        progress?.Invoke($"teacher: held-out accuracy {teacherEval.Accuracy:P1}");

        // The student speaks the teacher's tokens: its vocabulary covers the tokenizer and its special ids are the tokenizer's.
        var config = studentConfig.ForTokenizer(tokenizer.VocabSize, tokenizer.EosId, tokenizer.BosId, tokenizer.PadId);
        using var student = ModelBundle.Create(config.Build(new Generator(seed + 0x57D)), tokenizer, template);
        student.Policy.Model.Eval();
        var before = PipelineStages.Evaluate(student, task, heldOut, g);
        progress?.Invoke($"student before: held-out accuracy {before.Accuracy:P1}");
        var checkpoints = new LoopCheckpoints(runDir, safety, progress, group: group);
        var sft = PipelineStages.Sft(student, kept, settings, Path.Combine(runDir, "metrics.jsonl"), seed + 5, progress,
            checkpoints, group);
        var after = PipelineStages.Evaluate(student, task, heldOut, g);
        progress?.Invoke($"student after: held-out accuracy {after.Accuracy:P1}");
        if (PipelineStages.IsRoot(group)) student.Save(Path.Combine(runDir, "student"));

        teacherInfo["held_out"] = teacherEval.ToJson();
        var summary = new JsonObject
        {
            ["pipeline"] = "distill", ["task"] = task.Name, ["held_out_problems"] = heldOut.Count,
            ["teacher"] = teacherInfo, ["traces"] = traces, ["sft"] = sft,
            ["student"] = new JsonObject
            {
                ["model"] = "student", ["parameters"] = student.Policy.Parameters().Sum(p => (long)p.Numel),
                ["model_type"] = config.ModelType, ["hidden_size"] = config.HiddenSize, ["num_hidden_layers"] = config.NumHiddenLayers,
                ["n_routed_experts"] = config is DeepseekV3Config d ? d.NRoutedExperts : 0,
                ["before"] = before.ToJson(), ["after"] = after.ToJson(),
            },
            ["settings"] = settings.ToJson(),
        };
        PipelineStages.WriteSummary(runDir, summary, group);
        checkpoints.Clear();
        return summary;
    }

    private static readonly JsonSerializerOptions IdentityJson = new()
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The seed of the teacher's training problems (tests use it to know which problems the teacher sees).</summary>
    public static ulong TraceSeed(PipelineSettings s) => s.Grpo.Trainer.Seed + 0xD157;

    /// <summary>A preset name (<see cref="ModelPresets.Names"/>) or a config.json (file or directory) of any family.</summary>
    public static ICausalLMConfig ResolveStudentConfig(string presetOrPath)
    {
        if (File.Exists(presetOrPath) || Directory.Exists(presetOrPath)) return CausalLMRegistry.LoadConfig(presetOrPath);
        if (ModelPresets.Names.Contains(presetOrPath)) return ModelPresets.Get(presetOrPath);
        throw new ArgumentException($"student config '{presetOrPath}' is neither a preset ({string.Join(", ", ModelPresets.Names)}) nor an existing config.json file or directory");
    }
}
