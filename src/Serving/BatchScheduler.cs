// Source: continuous (iteration-level) batching as in Orca (OSDI'22) and vLLM's scheduler (arXiv:2309.06180):
//         requests join and leave the running batch between decode steps.
using System.Collections.Concurrent;
using System.Diagnostics;
using NativeReasoner.Model;

namespace NativeReasoner.Serving;

/// <summary>
/// Continuous batching over one model: a single scheduler thread owns the model and its
/// <see cref="SequenceSlotPool"/>. Between decode steps it admits queued requests (each gets a slot — reusing the
/// longest cached prefix — and is prefilled alone, giving its first token), then runs one decode step for every
/// running sequence at once (<see cref="ICausalLM.ForwardCached(Tensor, IKvCache, ReadOnlySpan{int})"/> over their
/// slots, each at its own position), samples each sequence with its own options and generator, and retires the
/// finished and the cancelled ones, whose slots go back to the pool. A sequence's tokens do not depend on what
/// else is in the batch (rows are independent), so greedy output is the same alone or batched.
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly ICausalLM _model;
    private readonly SequenceSlotPool _pool;
    private readonly ChatSchedulerStats _stats;
    private readonly ConcurrentQueue<Queued> _queue = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly List<Running> _running = [];
    private readonly Thread _thread;
    private readonly int _vocab;
    // Per-step inputs, sized for a full batch once: the decode loop allocates no arrays of its own for them.
    private readonly long[][] _stepIds;
    private readonly int[] _stepRows;
    private readonly Running[] _stepSequences;
    // Enqueue and shutdown take it, so no request is queued after the final drain.
    private readonly Lock _gate = new();
    private volatile bool _stopping;
    private int _disposed;

    private sealed record Queued(SequenceRequest Request, long EnqueuedAt);

    private sealed class Running(SequenceRequest request, int row, int cachedTokens, long enqueuedAt)
    {
        public SequenceRequest Request { get; } = request;
        public int Row { get; } = row;
        public int CachedTokens { get; } = cachedTokens;
        public long EnqueuedAt { get; } = enqueuedAt;
        public List<long> Output { get; } = [];
        public long Next { get; set; }
    }

    /// <param name="model">The model; the scheduler's thread is its only user from now on.</param>
    /// <param name="slots">Sequences decoded together at most (the pool's rows).</param>
    /// <param name="slotCapacity">Positions per sequence (prompt + generated).</param>
    /// <param name="stats">Counters to update (a new object when null).</param>
    /// <param name="reusePromptPrefix">Keep finished sequences in idle slots for prefix reuse.</param>
    public BatchScheduler(ICausalLM model, int slots, int slotCapacity, ChatSchedulerStats? stats = null,
        bool reusePromptPrefix = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _model.Eval();
        _vocab = model.Config.VocabSize;
        _pool = new SequenceSlotPool(model, slots, slotCapacity, reusePromptPrefix);
        _stats = stats ?? new ChatSchedulerStats();
        _stats.SlotCount = slots;
        _stepIds = Enumerable.Range(0, slots + 1).Select(n => new long[n]).ToArray();
        _stepRows = new int[slots];
        _stepSequences = new Running[slots];
        _thread = new Thread(Loop) { IsBackground = true, Name = "NativeReasoner batch scheduler" };
        _thread.Start();
    }

    public ChatSchedulerStats Stats => _stats;

    /// <summary>Positions one sequence may fill (prompt + generated tokens).</summary>
    public int SlotCapacity => _pool.Capacity;

    /// <summary>Slot counters: total, in use, idle (cached prefix), free. Exact while the scheduler is idle.</summary>
    public (int Slots, int InUse, int Idle, int Free) SlotCounts =>
        (_pool.SlotCount, _pool.InUse, _pool.Idle, _pool.Free);

    /// <summary>Bytes held by the slots' cache (allocated once, at construction).</summary>
    public long CacheBytes => _pool.BytesAllocated;

    /// <summary>Queues a request; it joins the running batch at the next step that has a free slot.</summary>
    public void Enqueue(SequenceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Prompt.Length >= _pool.Capacity)
            throw new ArgumentException($"the prompt ({request.Prompt.Length} tokens) fills a sequence slot of " +
                $"{_pool.Capacity} positions");
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            _stats.Queued();
            _queue.Enqueue(new Queued(request, Stopwatch.GetTimestamp()));
        }
        _wake.Set();
    }

    private void Loop()
    {
        while (!_stopping)
        {
            Admit();
            if (_running.Count == 0)
            {
                _wake.WaitOne();
                continue;
            }
            Step();
        }
        // Shutdown: every request still here ends as cancelled.
        for (int i = _running.Count - 1; i >= 0; i--)
            End(_running[i], null, new OperationCanceledException("the scheduler stopped"));
        while (_queue.TryDequeue(out var q))
        {
            _stats.Dequeued();
            _stats.EndedBeforeStart(SequenceEnd.Cancelled);
            Notify(q.Request, r => r.OnError?.Invoke(new OperationCanceledException("the scheduler stopped")));
        }
    }

    /// <summary>Moves queued requests into slots while there are slots: a prefill each, then its first token.</summary>
    private void Admit()
    {
        while (_pool.HasRoom && !_stopping && _queue.TryDequeue(out var queued))
        {
            _stats.Dequeued();
            var request = queued.Request;
            if (request.Cancellation.IsCancellationRequested)
            {
                _stats.EndedBeforeStart(SequenceEnd.Cancelled);
                Notify(request, r => r.OnError?.Invoke(new OperationCanceledException(r.Cancellation)));
                continue;
            }
            var (row, cached) = _pool.Acquire(request.Prompt);
            var seq = new Running(request, row, cached, queued.EnqueuedAt);
            _running.Add(seq);
            _stats.Started(request.Prompt.Length, cached);
            _stats.IdleCachedSlots = _pool.Idle;
            long first;
            try
            {
                first = Prefill(seq);
            }
            catch (Exception e)
            {
                End(seq, null, e, keepCache: false);
                continue;
            }
            _stats.FirstToken(Stopwatch.GetElapsedTime(queued.EnqueuedAt));
            Accept(seq, first);
        }
    }

    /// <summary>Runs the prompt tokens the slot does not hold yet; returns the first generated token.</summary>
    private long Prefill(Running seq)
    {
        var prompt = seq.Request.Prompt;
        int s = prompt.Length - seq.CachedTokens;
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();
        var ids = Tensor.FromArray(prompt[seq.CachedTokens..], [1, s]).To(_model.Device);
        var logits = _model.ForwardCachedLast(ids, _pool.Cache, [seq.Row]);                   // [1, 1, V]
        _pool.Record(seq.Row, prompt.AsSpan(seq.CachedTokens));
        var last = logits.ToArray();                                                             // [V]
        return Sample(seq, last);
    }

    /// <summary>One token for every running sequence, in one forward over their slots.</summary>
    private void Step()
    {
        for (int i = _running.Count - 1; i >= 0; i--)
            if (_running[i].Request.Cancellation.IsCancellationRequested)
                End(_running[i], null, new OperationCanceledException(_running[i].Request.Cancellation));
        int n = _running.Count;
        if (n == 0) return;
        var ids = _stepIds[n];
        for (int i = 0; i < n; i++)
        {
            _stepSequences[i] = _running[i];
            ids[i] = _running[i].Next;
            _stepRows[i] = _running[i].Row;
        }
        float[] logits;
        try
        {
            using var noGrad = Tensor.NoGrad();
            using var scope = new TensorScope();
            logits = _model.ForwardCached(Tensor.FromArray(ids, [n, 1]).To(_model.Device), _pool.Cache,
                _stepRows.AsSpan(0, n)).ToArray();                                               // [n, 1, V]
        }
        catch (Exception e)
        {
            // A failed step leaves every running slot's cache unknown: fail them all, keep serving the queue.
            for (int i = _running.Count - 1; i >= 0; i--) End(_running[i], null, e, keepCache: false);
            return;
        }
        _stats.Stepped();
        // Accept may retire a sequence (removing it from _running), so walk the step's own list.
        for (int i = 0; i < n; i++)
        {
            var seq = _stepSequences[i];
            _stepSequences[i] = null!;
            _pool.Record(seq.Row, [seq.Next]);
            Accept(seq, Sample(seq, logits.AsSpan(i * _vocab, _vocab)));
        }
    }

    private static long Sample(Running seq, ReadOnlySpan<float> logits) =>
        TextGeneration.Sample(logits, seq.Request.Sampling, seq.Request.Rng);

    /// <summary>Appends a sampled token to a sequence and ends it on EOS, a stop string or its length limit.</summary>
    private void Accept(Running seq, long token)
    {
        var request = seq.Request;
        seq.Output.Add(token);
        _stats.Generated();
        try
        {
            request.OnToken?.Invoke(token);
        }
        catch (Exception e)
        {
            End(seq, null, e);
            return;
        }
        FinishReason? reason = null;
        if (request.EosTokenIds.Contains(token)) reason = FinishReason.Eos;
        else if (request.Sampling.StopStrings.Count > 0)
        {
            var text = request.Sampling.Detokenize!(seq.Output);
            foreach (var stop in request.Sampling.StopStrings)
                if (text.Contains(stop, StringComparison.Ordinal)) { reason = FinishReason.StopString; break; }
        }
        // The slot must hold every fed token: the next step writes position prompt + output − 1.
        if (reason == null && (seq.Output.Count >= request.MaxNewTokens
                || request.Prompt.Length + seq.Output.Count > _pool.Capacity))
            reason = FinishReason.Length;
        if (reason is { } r) End(seq, r, null);
        else seq.Next = token;
    }

    /// <summary>Retires a sequence: its slot goes back to the pool, then its caller hears how it ended.</summary>
    private void End(Running seq, FinishReason? reason, Exception? error, bool keepCache = true)
    {
        if (!_running.Remove(seq)) return;
        _pool.Release(seq.Row, keepCache);
        _stats.IdleCachedSlots = _pool.Idle;
        var end = error == null ? SequenceEnd.Completed
            : error is OperationCanceledException ? SequenceEnd.Cancelled : SequenceEnd.Failed;
        _stats.Ended(end);
        if (error != null) Notify(seq.Request, r => r.OnError?.Invoke(error));
        else
        {
            var outcome = new SequenceOutcome(reason!.Value, seq.Request.Prompt.Length, seq.CachedTokens,
                seq.Output.ToArray());
            Notify(seq.Request, r => r.OnFinish?.Invoke(outcome));
        }
    }

    /// <summary>Runs a caller's callback; a throwing callback must not take the scheduler down.</summary>
    private static void Notify(SequenceRequest request, Action<SequenceRequest> callback)
    {
        try { callback(request); }
        catch (Exception) { /* the caller's own failure; nothing is left to tell it */ }
    }

    /// <summary>Cancels everything queued or running, joins the thread and frees the slots' cache.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_gate) _stopping = true;
        _wake.Set();
        if (Thread.CurrentThread != _thread) _thread.Join();
        _pool.Dispose();
        _wake.Dispose();
    }
}
