using System.Runtime.ExceptionServices;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// The one worker pool every CPU kernel uses. A call splits [0, count) into contiguous ranges and runs
/// <c>body(state, start, end)</c> on them, blocking until all are done. <c>state</c> points at a struct on
/// the caller's stack (valid because the caller waits), so a call allocates nothing.
/// Calls made from inside a running body execute inline: nested parallel ops never oversubscribe.
/// </summary>
/// <remarks>
/// Design: <see cref="Threads"/> − 1 long-lived background workers plus the calling thread. A call publishes
/// one job (body, state, count, chunk) in static fields, bumps a generation counter and wakes the workers;
/// every participant then claims chunks from one atomic counter until the range is exhausted. Workers have
/// to claim a "slot" before they touch the job fields, and the caller revokes the unclaimed slots once it has
/// run out of chunks, so a worker that wakes late never reads a job that is being replaced and the caller
/// never waits for a worker that is still asleep. Only one top-level job runs at a time: a second thread that
/// calls while the pool is busy runs its job inline instead of waiting.
/// </remarks>
public static unsafe class CpuParallel
{
    /// <summary>Worker count (the machine's cores, or NR_NUM_THREADS).</summary>
    public static int Threads { get; } = ReadThreadCount();

    [ThreadStatic] private static bool t_insideBody;

    /// <summary>True while the current thread is executing a parallel body.</summary>
    public static bool InsideParallelBody => t_insideBody;

    // Held by the thread whose job currently owns the pool.
    private static readonly object s_callLock = new();
    // Workers that found no job for a while sleep on this monitor.
    private static readonly object s_sleepLock = new();
    private static readonly ManualResetEventSlim s_done = new(false, 64);
    private static Thread[]? s_workers;

    // The published job. Written only by the owner of s_callLock before the generation bump.
    private static delegate*<void*, long, long, void> s_body;
    private static void* s_state;
    private static long s_count;
    private static long s_chunk;
    private static long s_next;          // start of the next unclaimed chunk
    private static int s_slots;          // worker places still open in this job (claim: decrement ≥ 0)
    private static int s_pending;        // participants (caller + claimed workers + open slots) not finished
    private static int s_generation;     // bumped once per job; workers watch it
    private static int s_sleepers;       // workers blocked on s_sleepLock
    private static Exception? s_error;   // first exception thrown by a body in this job
    // How long an idle worker polls before it sleeps (≈ 100 µs).
    private static readonly long s_spinTicks = System.Diagnostics.Stopwatch.Frequency / 10_000;

    /// <param name="count">Number of work items.</param>
    /// <param name="minChunk">Smallest range worth handing to another thread.</param>
    public static void For(long count, long minChunk, delegate*<void*, long, long, void> body, void* state)
    {
        if (count <= 0) return;
        minChunk = Math.Max(1, minChunk);
        int parts = (int)Math.Min(Threads, Math.Max(1, count / minChunk));
        if (parts <= 1 || t_insideBody || !Monitor.TryEnter(s_callLock))
        {
            // Small job, nested call, or another thread owns the pool right now: run it here.
            RunInline(body, state, 0, count);
            return;
        }
        try
        {
            EnsureWorkers();
            // A few chunks per participant so a core slowed by other load does not hold everybody up.
            long chunk = Math.Max(minChunk, (count + parts * 4L - 1) / (parts * 4L));
            s_body = body;
            s_state = state;
            s_count = count;
            s_chunk = chunk;
            s_error = null;
            Volatile.Write(ref s_next, 0);
            s_done.Reset();
            Volatile.Write(ref s_pending, parts);
            // Slots open last: a worker that claims one sees every field above (Interlocked = full fence).
            Interlocked.Exchange(ref s_slots, parts - 1);
            Interlocked.Increment(ref s_generation);
            if (Volatile.Read(ref s_sleepers) > 0)
            {
                lock (s_sleepLock) Monitor.PulseAll(s_sleepLock);
            }

            Participate();
            // Whatever slots nobody claimed yet will never be used by this job: count them as finished.
            int unclaimed = Interlocked.Exchange(ref s_slots, 0);
            int left = Interlocked.Add(ref s_pending, -(1 + Math.Max(0, unclaimed)));
            if (left != 0) s_done.Wait();

            var error = s_error;
            s_error = null;
            s_body = null;
            s_state = null;
            if (error != null) ExceptionDispatchInfo.Capture(error).Throw();
        }
        finally
        {
            Monitor.Exit(s_callLock);
        }
    }

    /// <summary>Claims chunks of the current job until none are left.</summary>
    private static void Participate()
    {
        var body = s_body;
        void* state = s_state;
        long count = s_count, chunk = s_chunk;
        bool outer = t_insideBody;
        t_insideBody = true;
        try
        {
            while (true)
            {
                long start = Interlocked.Add(ref s_next, chunk) - chunk;
                if (start >= count) break;
                try
                {
                    body(state, start, Math.Min(count, start + chunk));
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref s_error, e, null);
                    // Stop handing out further chunks: the job has failed anyway.
                    Volatile.Write(ref s_next, count);
                }
            }
        }
        finally
        {
            t_insideBody = outer;
        }
    }

    private static void WorkerLoop()
    {
        int seen = Volatile.Read(ref s_generation);
        while (true)
        {
            // Spin briefly: kernels are usually called back to back, and waking from a monitor costs
            // tens of microseconds.
            int gen = seen;
            long spinUntil = System.Diagnostics.Stopwatch.GetTimestamp() + s_spinTicks;
            while ((gen = Volatile.Read(ref s_generation)) == seen
                   && System.Diagnostics.Stopwatch.GetTimestamp() < spinUntil)
                Thread.SpinWait(8);
            if (gen == seen)
            {
                lock (s_sleepLock)
                {
                    Interlocked.Increment(ref s_sleepers);
                    while ((gen = Volatile.Read(ref s_generation)) == seen) Monitor.Wait(s_sleepLock);
                    Interlocked.Decrement(ref s_sleepers);
                }
            }
            seen = gen;
            if (Interlocked.Decrement(ref s_slots) < 0) continue; // job already fully staffed or finished

            Participate();
            if (Interlocked.Decrement(ref s_pending) == 0) s_done.Set();
        }
    }

    private static void EnsureWorkers()
    {
        if (s_workers != null) return;
        var workers = new Thread[Threads - 1];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(WorkerLoop, 4 << 20) { IsBackground = true, Name = $"nr-cpu-{i + 1}" };
            workers[i].Start();
        }
        s_workers = workers;
    }

    private static void RunInline(delegate*<void*, long, long, void> body, void* state, long start, long end)
    {
        bool outer = t_insideBody;
        t_insideBody = true;
        try { body(state, start, end); }
        finally { t_insideBody = outer; }
    }

    private static int ReadThreadCount()
    {
        var env = Environment.GetEnvironmentVariable("NR_NUM_THREADS");
        if (int.TryParse(env, out int n) && n > 0) return n;
        return Math.Max(1, Environment.ProcessorCount);
    }
}
