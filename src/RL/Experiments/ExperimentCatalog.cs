namespace NativeReasoner.RL.Experiments;

/// <summary>A named experiment: the question it answers and its arms.</summary>
/// <param name="NumIterations">μ of every arm (optimizer steps per generation batch); above 1 the update
/// runs on a policy that has moved since the rollout, which is what routing replay and GSPO address.</param>
public sealed record Experiment(string Name, string Question, IReadOnlyList<ExperimentArm> Arms,
    int NumIterations = 1)
{
    /// <summary>Whether the experiment needs the trained DeepSeek-V3 teacher (and the student) per seed.</summary>
    public bool NeedsTeacher => Arms.Any(a => a.Method == ArmMethod.Distill || a.Start == ArmStart.Student);
}

/// <summary>The experiments <c>nr experiment NAME</c> knows.</summary>
public static class ExperimentCatalog
{
    public static IReadOnlyList<string> Names => ["controls", "objectives", "distill"];

    public static Experiment Get(string name) => name switch
    {
        "controls" => new Experiment("controls",
            "Does GRPO's gain come from the verifiable reward? GRPO (accuracy + format) against a random reward, " +
            "a format-only reward and SFT on the model's own verified samples, with the same sampling budget.",
            [
                new("grpo", "GRPO, accuracy + format reward"),
                new("random-reward", "GRPO, reward a coin flip per completion", Reward: ArmReward.Random),
                new("format-only", "GRPO, format reward only", Reward: ArmReward.FormatOnly),
                new("self-sft", "SFT on the model's own verified samples", Method: ArmMethod.SelfSft),
            ]),
        "objectives" => new Experiment("objectives",
            "Token-level GRPO against sequence-level GSPO, with and without routing replay and dynamic sampling, on " +
            "the MoE policy with two optimizer steps per generation batch (μ = 2, so the router can move between " +
            "the rollout and the update).",
            [
                new("grpo", "GRPO, token-level ratio"),
                new("gspo", "GSPO, sequence-level ratio (clip 3e-4 / 4e-4 as in the GSPO paper)",
                    Trainer: t => t with
                    {
                        ImportanceSamplingLevel = ImportanceSamplingLevel.Sequence, EpsilonLow = 3e-4f,
                        EpsilonHigh = 4e-4f,
                    }),
                new("grpo-replay", "GRPO with routing replay",
                    Trainer: t => t with { RoutingReplay = true }),
                new("grpo-dynamic", "GRPO with DAPO dynamic sampling (up to 3 sampling rounds per step)",
                    Trainer: t => t with { DynamicSampling = true, DynamicSamplingMaxRounds = 3 }),
            ],
            NumIterations: 2),
        "distill" => new Experiment("distill",
            "The R1 paper's distillation finding in miniature: a dense qwen2 student about a quarter the size of " +
            "the GRPO-trained DeepSeek-V3 teacher, trained on the teacher's verified samples, against the same " +
            "student trained by GRPO alone with the same steps and samples.",
            [
                new("student-distill", "qwen2 student, SFT on the teacher's verified samples",
                    Method: ArmMethod.Distill, Start: ArmStart.Student),
                new("student-grpo", "qwen2 student, GRPO (accuracy + format)", Start: ArmStart.Student),
            ]),
        _ => throw new ArgumentException($"unknown experiment '{name}' (known: {string.Join(", ", Names)})"),
    };
}
