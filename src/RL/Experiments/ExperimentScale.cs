using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using NativeReasoner.Model.Qwen2;

namespace NativeReasoner.RL.Experiments;

/// <summary>
/// How big every run of an experiment is: the shared pre-training, each arm's training steps and rollout shape, and
/// the evaluation. Every arm of an experiment uses the same scale, so the arms differ only in what the experiment
/// varies.
/// </summary>
public sealed record ExperimentScale
{
    public required string Name { get; init; }
    /// <summary>The DeepSeek-V3 policy every experiment starts from (the distill experiment's teacher).</summary>
    public required ICausalLMConfig Model { get; init; }
    /// <summary>The dense qwen2 student of the distill experiment.</summary>
    public required ICausalLMConfig Student { get; init; }
    public required int PretrainSteps { get; init; }
    public required int PretrainBatch { get; init; }
    /// <summary>Training steps of every arm: one generation batch and one optimizer update each.</summary>
    public required int ArmSteps { get; init; }
    public required int PromptsPerStep { get; init; }
    public required int NumGenerations { get; init; }
    public required int MaxCompletionLength { get; init; }
    /// <summary>Held-out problems evaluated greedily (levels cycle).</summary>
    public required int EvalProblems { get; init; }
    /// <summary>Held-out problems evaluated by sampling <see cref="EvalSamples"/> completions each.</summary>
    public required int SampledProblems { get; init; }
    public required int EvalSamples { get; init; }
    /// <summary>Problems of the ladder's unseen level 6 (greedy; 0 skips it).</summary>
    public required int UnseenProblems { get; init; }
    /// <summary>Held-out evaluation during training every this many steps (the learning curves; 0 = off).</summary>
    public required int EvalEvery { get; init; }
    public required int CurveProblems { get; init; }

    public static IReadOnlyList<string> Names => ["tiny", "small", "full"];

    /// <summary>
    /// <c>tiny</c>: seconds, for tests; <c>small</c>: one experiment × 3 seeds well under an hour on an idle 2-core
    /// machine (a quarter of <c>nr train</c>'s pre-training, an eighth of its GRPO steps); <c>full</c>:
    /// <c>nr train</c>'s budgets for every arm.
    /// </summary>
    public static ExperimentScale Get(string name) => name switch
    {
        "tiny" => new ExperimentScale
        {
            Name = name,
            Model = DeepseekV3Config.Preset("tiny") with { VocabSize = 128, MaxPositionEmbeddings = 256 },
            Student = ModelPresets.Get("qwen2-tiny").WithMaxPositionEmbeddings(256),
            PretrainSteps = 3, PretrainBatch = 4, ArmSteps = 2, PromptsPerStep = 2, NumGenerations = 2,
            MaxCompletionLength = 8, EvalProblems = 5, SampledProblems = 5, EvalSamples = 2, UnseenProblems = 2,
            EvalEvery = 1, CurveProblems = 3,
        },
        "small" => new ExperimentScale
        {
            Name = name,
            Model = DeepseekV3Config.Preset("bench-tiny") with { MaxPositionEmbeddings = 128 },
            Student = StudentQwen2(),
            PretrainSteps = 600, PretrainBatch = 32, ArmSteps = 50, PromptsPerStep = 8, NumGenerations = 8,
            MaxCompletionLength = 64, EvalProblems = 100, SampledProblems = 50, EvalSamples = 8, UnseenProblems = 30,
            EvalEvery = 10, CurveProblems = 40,
        },
        "full" => new ExperimentScale
        {
            Name = name,
            Model = DeepseekV3Config.Preset("bench-tiny") with { MaxPositionEmbeddings = 128 },
            Student = StudentQwen2(),
            PretrainSteps = 2300, PretrainBatch = 32, ArmSteps = 400, PromptsPerStep = 8, NumGenerations = 8,
            MaxCompletionLength = 64, EvalProblems = 250, SampledProblems = 100, EvalSamples = 8, UnseenProblems = 50,
            EvalEvery = 20, CurveProblems = 50,
        },
        _ => throw new ArgumentException($"unknown --scale '{name}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>
    /// The distill experiment's dense student: a 4-layer qwen2 of width 192 with about a quarter of the bench-tiny
    /// teacher's parameters (2.2 M against 9.9 M; the teacher's 256 routed experts hold most of its weights, while
    /// per token the student computes about twice the teacher's active parameters).
    /// </summary>
    private static ICausalLMConfig StudentQwen2() => (Qwen2Family.Defaults with
    {
        VocabSize = 128,
        HiddenSize = 192,
        IntermediateSize = 768,
        NumHiddenLayers = 4,
        NumAttentionHeads = 6,
        NumKeyValueHeads = 2,
        HeadDim = 32,
        MaxPositionEmbeddings = 128,
        Rope = new RopeParameters { Theta = 1000000 },
    }).Validate();
}
