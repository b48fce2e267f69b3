namespace NativeReasoner.RL.Experiments;

/// <summary>How an arm trains its model.</summary>
public enum ArmMethod
{
    /// <summary>GRPO (or a variant set by the arm's trainer settings) on the arm's reward.</summary>
    Grpo,
    /// <summary>
    /// SFT on the model's own verified samples (rejection-sampling fine-tuning): each step samples the same
    /// prompts × completions as a GRPO step, keeps the correct, well-formed ones and takes one SFT step on them.
    /// </summary>
    SelfSft,
    /// <summary>
    /// SFT of the student on the teacher's verified samples: each step the teacher samples the same prompts ×
    /// completions as a GRPO step, and the student takes one SFT step on the correct, well-formed ones.
    /// </summary>
    Distill,
}

/// <summary>What an arm is rewarded for (GRPO arms; the SFT arms always keep verified samples).</summary>
public enum ArmReward
{
    /// <summary><c>nr train</c>'s rewards: accuracy (weight 1) + format (weight 0.5).</summary>
    AccuracyFormat,
    /// <summary>A coin flip per (prompt, completion) (<see cref="RandomReward"/>): no signal at all.</summary>
    Random,
    /// <summary>The format reward alone: the shape of an answer, never its correctness.</summary>
    FormatOnly,
}

/// <summary>Which pre-trained model an arm starts from.</summary>
public enum ArmStart
{
    /// <summary>The DeepSeek-V3 policy pre-trained for the seed.</summary>
    Pretrained,
    /// <summary>The distill experiment's dense qwen2 student, pre-trained for the seed on the same corpus.</summary>
    Student,
}

/// <summary>
/// One arm of an experiment: a method, a reward and trainer changes applied on top of the experiment's base
/// trainer settings. Arms of one experiment share the pre-trained model of each seed and the step budget.
/// </summary>
public sealed record ExperimentArm(string Name, string Description, ArmMethod Method = ArmMethod.Grpo,
    ArmReward Reward = ArmReward.AccuracyFormat, ArmStart Start = ArmStart.Pretrained,
    Func<GrpoConfig, GrpoConfig>? Trainer = null);
