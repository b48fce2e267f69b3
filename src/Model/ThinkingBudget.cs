namespace NativeReasoner.Model;

// Budget forcing, after s1: Simple test-time scaling (arXiv 2501.19393, §3.1).

/// <summary>
/// Budget forcing of the thinking phase: caps it at <see cref="MaxThinkingTokens"/> by inserting the end-of-thinking
/// tokens when the cap is reached, and extends it by replacing an early end-of-thinking with
/// <see cref="ExtensionIds"/> ("Wait"), at most <see cref="MaxExtensions"/> times. Token ids come from the caller's
/// tokenizer. Works at token-choice time, so it fits the cached decoder and the recompute sampler alike; every row
/// of a batch keeps its own state.
/// </summary>
public sealed record ThinkingBudget
{
    /// <summary>Thinking tokens allowed before the end is forced (null = no cap, only extensions).</summary>
    public int? MaxThinkingTokens { get; init; }

    /// <summary>The tokens of <c>&lt;/think&gt;</c>.</summary>
    public required IReadOnlyList<long> ThinkEndIds { get; init; }

    /// <summary>
    /// The tokens of <c>&lt;think&gt;</c> when the model opens thinking itself: tokens are counted only after it
    /// has generated them. Empty = the prompt already opened thinking, so counting starts at the first token.
    /// </summary>
    public IReadOnlyList<long> ThinkStartIds { get; init; } = [];

    /// <summary>What replaces an early <c>&lt;/think&gt;</c> (e.g. the tokens of "Wait"); empty = never extend.</summary>
    public IReadOnlyList<long> ExtensionIds { get; init; } = [];

    /// <summary>Early ends replaced per sequence, at most.</summary>
    public int MaxExtensions { get; init; }

    /// <summary>Checks the settings and starts the per-row state of one generation call over <paramref name="rows"/>.</summary>
    public ThinkingBudgetState Start(int rows)
    {
        if (ThinkEndIds.Count == 0) throw new ArgumentException("thinking budget: the end-of-thinking tokens are empty");
        if (MaxThinkingTokens is < 0)
            throw new ArgumentException($"thinking budget must be ≥ 0 tokens, got {MaxThinkingTokens}");
        if (MaxExtensions < 0) throw new ArgumentException($"max extensions must be ≥ 0, got {MaxExtensions}");
        if (MaxExtensions > 0 && ExtensionIds.Count == 0)
            throw new ArgumentException($"{MaxExtensions} extensions need extension tokens (e.g. \"Wait\"), got none");
        return new ThinkingBudgetState(this, rows);
    }
}

/// <summary>Where one row stands: before thinking opened, thinking, or answering.</summary>
public enum ThinkingPhase { NotStarted, Thinking, Answering }

/// <summary>
/// The per-row state of a <see cref="ThinkingBudget"/> during one generation call. The sampler calls
/// <see cref="Choose"/> once per token it appends to a row, with the token it sampled; the returned token is the
/// one appended.
/// </summary>
public sealed class ThinkingBudgetState
{
    private readonly ThinkingBudget _budget;
    private readonly long[] _end, _start, _extension;
    private readonly ThinkingPhase[] _phase;
    private readonly int[] _thinkingTokens, _extensionsUsed;
    // Rows whose forced queue holds a </think>: those tokens close thinking and are not counted.
    private readonly bool[] _closing;
    // Forced tokens still to emit per row (the rest of a multi-token </think> or extension).
    private readonly Queue<long>[] _forced;
    // The last tokens each row emitted, enough to recognise a multi-token <think> or </think>.
    private readonly List<long>[] _recent;

    internal ThinkingBudgetState(ThinkingBudget budget, int rows)
    {
        _budget = budget;
        _end = [.. budget.ThinkEndIds];
        _start = [.. budget.ThinkStartIds];
        _extension = [.. budget.ExtensionIds];
        _phase = new ThinkingPhase[rows];
        Array.Fill(_phase, _start.Length == 0 ? ThinkingPhase.Thinking : ThinkingPhase.NotStarted);
        _thinkingTokens = new int[rows];
        _extensionsUsed = new int[rows];
        _closing = new bool[rows];
        _forced = Enumerable.Range(0, rows).Select(_ => new Queue<long>()).ToArray();
        _recent = Enumerable.Range(0, rows).Select(_ => new List<long>()).ToArray();
    }

    public ThinkingPhase Phase(int row) => _phase[row];

    /// <summary>Tokens counted as thinking so far in <paramref name="row"/> (forced extension tokens included).</summary>
    public int ThinkingTokens(int row) => _thinkingTokens[row];

    /// <summary>Early ends replaced so far in <paramref name="row"/>.</summary>
    public int ExtensionsUsed(int row) => _extensionsUsed[row];

    /// <summary>The token appended to <paramref name="row"/> next, given the one the sampler picked.</summary>
    public long Choose(int row, long sampled)
    {
        if ((uint)row >= (uint)_phase.Length)
            throw new ArgumentOutOfRangeException(nameof(row), $"row {row} outside the batch of {_phase.Length}");
        long token = Decide(row, sampled);
        Remember(row, token);
        return token;
    }

    private long Decide(int row, long sampled)
    {
        var forced = _forced[row];
        if (forced.Count > 0)
        {
            long f = forced.Dequeue();
            // The last token of a forced </think> closes thinking; extension tokens count as thinking.
            if (_closing[row])
            {
                if (forced.Count == 0) { _closing[row] = false; _phase[row] = ThinkingPhase.Answering; }
            }
            else _thinkingTokens[row]++;
            return f;
        }
        switch (_phase[row])
        {
            case ThinkingPhase.NotStarted:
                if (EndsWith(row, _start, sampled)) _phase[row] = ThinkingPhase.Thinking;
                return sampled;
            case ThinkingPhase.Thinking:
                if (_thinkingTokens[row] >= (_budget.MaxThinkingTokens ?? int.MaxValue)) return Force(row, _end);
                if (EndsWith(row, _end, sampled))
                {
                    if (_extensionsUsed[row] < _budget.MaxExtensions)
                    {
                        // The model would stop thinking early: "Wait" instead. With a multi-token </think> its
                        // leading tokens are already out; only the completing one is replaced.
                        _extensionsUsed[row]++;
                        return Force(row, _extension);
                    }
                    _phase[row] = ThinkingPhase.Answering;
                    return sampled;
                }
                _thinkingTokens[row]++;
                return sampled;
            default:
                return sampled;
        }
    }

    /// <summary>Queues <paramref name="tokens"/> for <paramref name="row"/> and emits the first.</summary>
    private long Force(int row, long[] tokens)
    {
        _closing[row] = ReferenceEquals(tokens, _end);
        foreach (var t in tokens) _forced[row].Enqueue(t);
        return Decide(row, tokens[0]);
    }

    /// <summary>Whether the row's emitted tokens followed by <paramref name="next"/> end with <paramref name="tail"/>.</summary>
    private bool EndsWith(int row, long[] tail, long next)
    {
        if (tail.Length == 0 || tail[^1] != next) return false;
        var recent = _recent[row];
        if (recent.Count < tail.Length - 1) return false;
        for (int i = 0; i < tail.Length - 1; i++)
            if (recent[recent.Count - (tail.Length - 1) + i] != tail[i]) return false;
        return true;
    }

    private void Remember(int row, long token)
    {
        var recent = _recent[row];
        recent.Add(token);
        int keep = Math.Max(_end.Length, _start.Length);
        if (recent.Count > keep) recent.RemoveRange(0, recent.Count - keep);
    }
}
