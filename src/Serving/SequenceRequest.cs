using NativeReasoner.Model;

namespace NativeReasoner.Serving;

/// <summary>
/// One generation as a <see cref="BatchScheduler"/> runs it: the prompt's token ids, its own sampling (temperature,
/// top-k, top-p from <see cref="Sampling"/>, and its own seeded <see cref="Rng"/>), its stop conditions, and the
/// callbacks through which its tokens and its end reach the caller. The callbacks run on the scheduler thread, so
/// they must be quick (the chat client's write to a channel); one that throws fails only its own request.
/// </summary>
public sealed class SequenceRequest
{
    public SequenceRequest(long[] prompt, int maxNewTokens, GenerationOptions sampling, Generator rng,
        IReadOnlyCollection<long> eosTokenIds)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(sampling);
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(eosTokenIds);
        if (prompt.Length == 0) throw new ArgumentException("a request needs at least one prompt token");
        if (maxNewTokens < 1) throw new ArgumentException($"max new tokens must be ≥ 1, got {maxNewTokens}");
        if (sampling.Temperature < 0 || float.IsNaN(sampling.Temperature))
            throw new ArgumentException($"temperature must be ≥ 0, got {sampling.Temperature}");
        if (!(sampling.TopP > 0 && sampling.TopP <= 1))
            throw new ArgumentException($"top-p must be in (0, 1], got {sampling.TopP}");
        if (sampling.StopStrings.Count > 0 && sampling.Detokenize == null)
            throw new ArgumentException("stop strings need a detokenizer");
        Prompt = prompt;
        MaxNewTokens = maxNewTokens;
        Sampling = sampling;
        Rng = rng;
        EosTokenIds = [.. eosTokenIds];
    }

    public long[] Prompt { get; }
    public int MaxNewTokens { get; }

    /// <summary>Temperature, top-k, top-p, stop strings and their detokenizer (the other fields are ignored).</summary>
    public GenerationOptions Sampling { get; }

    public Generator Rng { get; }
    public HashSet<long> EosTokenIds { get; }

    /// <summary>Checked before the prefill and before every decode step; cancelling frees the slot.</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>Each generated token, as it is appended (the end-of-sequence token included).</summary>
    public Action<long>? OnToken { get; init; }

    /// <summary>The end: why, and the prompt tokens that came from a cached prefix.</summary>
    public Action<SequenceOutcome>? OnFinish { get; init; }

    /// <summary>
    /// A failure, or an <see cref="OperationCanceledException"/> when the request was cancelled; neither
    /// <see cref="OnFinish"/> follows.
    /// </summary>
    public Action<Exception>? OnError { get; init; }
}

/// <summary>How a request ended: why, its prompt length, the prompt tokens reused from a slot, its tokens.</summary>
public sealed record SequenceOutcome(FinishReason FinishReason, int PromptTokens, int CachedTokens, long[] Tokens);
