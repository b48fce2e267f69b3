using NativeReasoner.Model;

namespace NativeReasoner.Serving;

/// <summary>
/// How a <see cref="NativeReasonerChatClient"/> loads its model and what a request without options gets.
/// </summary>
public sealed class NativeReasonerChatClientOptions
{
    /// <summary>Where the weights live (null = the CPU).</summary>
    public Device? Device { get; set; }

    /// <summary>How the checkpoint is loaded (null = <see cref="CheckpointLoadOptions.Inference"/>).</summary>
    public CheckpointLoadOptions? Load { get; set; }

    /// <summary>The model id reported in metadata and responses (null = the directory's name).</summary>
    public string? ModelId { get; set; }

    /// <summary>Tokens per answer when the request sets no MaxOutputTokens (the context left caps it).</summary>
    public int DefaultMaxOutputTokens { get; set; } = 1024;

    /// <summary>Temperature when the request sets none (R1's recommendation; 0 = greedy).</summary>
    public float DefaultTemperature { get; set; } = 0.6f;

    /// <summary>Top-p when the request sets none.</summary>
    public float DefaultTopP { get; set; } = 0.95f;

    /// <summary>
    /// Sequences decoded together at most (the scheduler's cache slots); further requests wait in its queue.
    /// </summary>
    public int MaxConcurrentSequences { get; set; } = 8;

    /// <summary>
    /// Positions one sequence slot holds, prompt + answer (capped by the model's context). The slots' cache is
    /// allocated once, in fp32: MaxConcurrentSequences × this × the model's cache bytes per token (R1-Distill-Qwen-
    /// 1.5B: 56 KiB per token, so 8 × 4096 positions take 1.8 GiB).
    /// </summary>
    public int MaxSequenceLength { get; set; } = 4096;

    /// <summary>
    /// Finished conversations kept in idle slots so that the next turn reuses their prompt prefix (reported as
    /// cached input tokens); off, every request starts from an empty slot.
    /// </summary>
    public bool ReusePromptPrefix { get; set; } = true;
}
