using System.Diagnostics;

namespace NativeReasoner.Serving;

/// <summary>
/// Live counters of a chat client's scheduler, for a metrics endpoint: get it with
/// <c>client.GetService(typeof(ChatSchedulerStats))</c>. Counters only grow; gauges (queue depth, running sequences,
/// slots) are the current values. Written by the scheduler thread, readable from any thread.
/// </summary>
public sealed class ChatSchedulerStats
{
    // Recent time-to-first-token samples (seconds), a ring, for percentiles.
    private const int TtftWindow = 1024;
    private readonly double[] _ttft = new double[TtftWindow];
    private readonly Lock _ttftLock = new();
    private long _ttftCount;
    private double _ttftSumSeconds;

    private int _queueDepth, _running;
    private long _started, _completed, _cancelled, _failed;
    private long _promptTokens, _cachedPromptTokens, _generatedTokens, _decodeSteps;
    private readonly long _createdAt = Stopwatch.GetTimestamp();

    /// <summary>Requests waiting for a sequence slot.</summary>
    public int QueueDepth => Volatile.Read(ref _queueDepth);

    /// <summary>Sequences being decoded (each holds a cache slot).</summary>
    public int RunningSequences => Volatile.Read(ref _running);

    /// <summary>Sequence slots of the scheduler (its largest batch); 1 for a client running one request at a time.</summary>
    public int SlotCount { get; internal set; } = 1;

    /// <summary>Released slots that still hold a finished conversation (prefix reuse candidates).</summary>
    public int IdleCachedSlots { get; internal set; }

    /// <summary>Requests that got a slot and started generating.</summary>
    public long RequestsStarted => Interlocked.Read(ref _started);

    /// <summary>Requests that ended normally (stop, end of sequence or length).</summary>
    public long RequestsCompleted => Interlocked.Read(ref _completed);

    /// <summary>Requests cancelled by their caller (or by disposing the client) after they were queued.</summary>
    public long RequestsCancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Requests that ended with an error.</summary>
    public long RequestsFailed => Interlocked.Read(ref _failed);

    /// <summary>Prompt tokens of the started requests (cached ones included).</summary>
    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    /// <summary>Prompt tokens served from a cached prefix instead of being recomputed.</summary>
    public long CachedPromptTokens => Interlocked.Read(ref _cachedPromptTokens);

    /// <summary>Tokens generated over all requests.</summary>
    public long GeneratedTokens => Interlocked.Read(ref _generatedTokens);

    /// <summary>Batched decode steps run (one forward for all running sequences each).</summary>
    public long DecodeSteps => Interlocked.Read(ref _decodeSteps);

    /// <summary>Time since the client was created (a rate: counter / uptime, or the change between two scrapes).</summary>
    public TimeSpan Uptime => Stopwatch.GetElapsedTime(_createdAt);

    /// <summary>Requests that produced a first token.</summary>
    public long TimeToFirstTokenCount => Interlocked.Read(ref _ttftCount);

    /// <summary>Sum of the time to first token over those requests, in seconds (queue wait + prefill).</summary>
    public double TimeToFirstTokenSumSeconds
    {
        get { lock (_ttftLock) return _ttftSumSeconds; }
    }

    /// <summary>
    /// The q-quantile (0 … 1, nearest rank) of the time to first token over the last 1024 requests, in seconds;
    /// NaN before any.
    /// </summary>
    public double TimeToFirstTokenQuantile(double q)
    {
        if (!(q >= 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), q, "a quantile is in [0, 1]");
        double[] window;
        lock (_ttftLock)
        {
            int n = (int)Math.Min(_ttftCount, TtftWindow);
            if (n == 0) return double.NaN;
            window = _ttft[..n];
        }
        Array.Sort(window);
        return window[Math.Clamp((int)Math.Ceiling(q * window.Length) - 1, 0, window.Length - 1)];
    }

    internal void Queued() => Interlocked.Increment(ref _queueDepth);

    internal void Dequeued() => Interlocked.Decrement(ref _queueDepth);

    internal void Started(int promptTokens, int cachedTokens)
    {
        Interlocked.Increment(ref _started);
        Interlocked.Increment(ref _running);
        Interlocked.Add(ref _promptTokens, promptTokens);
        Interlocked.Add(ref _cachedPromptTokens, cachedTokens);
    }

    internal void Generated() => Interlocked.Increment(ref _generatedTokens);

    internal void Stepped() => Interlocked.Increment(ref _decodeSteps);

    internal void FirstToken(TimeSpan sinceQueued)
    {
        lock (_ttftLock)
        {
            _ttft[_ttftCount % TtftWindow] = sinceQueued.TotalSeconds;
            _ttftSumSeconds += sinceQueued.TotalSeconds;
            _ttftCount++;
        }
    }

    /// <summary>A started request ended: it leaves the running sequences and is counted by how.</summary>
    internal void Ended(SequenceEnd end)
    {
        Interlocked.Decrement(ref _running);
        EndedBeforeStart(end);
    }

    /// <summary>A request ended (before it got a slot, or after): counted by how.</summary>
    internal void EndedBeforeStart(SequenceEnd end)
    {
        switch (end)
        {
            case SequenceEnd.Completed: Interlocked.Increment(ref _completed); break;
            case SequenceEnd.Cancelled: Interlocked.Increment(ref _cancelled); break;
            default: Interlocked.Increment(ref _failed); break;
        }
    }
}

/// <summary>How a request left the scheduler.</summary>
internal enum SequenceEnd { Completed, Cancelled, Failed }
