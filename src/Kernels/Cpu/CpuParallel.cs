namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// The one worker pool every CPU kernel uses. A call splits [0, count) into contiguous ranges and runs
/// <c>body(state, start, end)</c> on them, blocking until all are done. <c>state</c> points at a struct on
/// the caller's stack (valid because the caller waits), so a call allocates nothing.
/// Calls made from inside a running body execute inline: nested parallel ops never oversubscribe.
/// </summary>
public static unsafe class CpuParallel
{
    /// <summary>Worker count (the machine's cores, or NR_NUM_THREADS).</summary>
    public static int Threads { get; } = ReadThreadCount();

    [ThreadStatic] private static bool t_insideBody;

    /// <summary>True while the current thread is executing a parallel body.</summary>
    public static bool InsideParallelBody => t_insideBody;

    /// <param name="count">Number of work items.</param>
    /// <param name="minChunk">Smallest range worth handing to another thread.</param>
    public static void For(long count, long minChunk, delegate*<void*, long, long, void> body, void* state)
    {
        if (count <= 0) return;
        int parts = (int)Math.Min(Threads, Math.Max(1, count / Math.Max(1, minChunk)));
        if (parts <= 1 || t_insideBody)
        {
            RunInline(body, state, 0, count);
            return;
        }
        // Placeholder scheduler: Parallel.For over equal ranges. Replaced by a dedicated pool.
        long chunk = (count + parts - 1) / parts;
        nint fn = (nint)body, st = (nint)state;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = Threads }, p =>
        {
            long s = p * chunk, e = Math.Min(count, s + chunk);
            if (s < e) RunInline((delegate*<void*, long, long, void>)fn, (void*)st, s, e);
        });
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
