using NativeReasoner.Kernels.Cpu;
using Xunit;

namespace NativeReasoner.Tests.Kernels;

public sealed unsafe class CpuParallelTests
{
    private struct CountState
    {
        public int* Hits;
        public int Throw;      // item index that throws, −1 for none
        public int NestedCount;
        public int* NestedInline; // set to 1 if a nested call ran on another thread or outside a body
    }

    private static void CountBody(void* state, long start, long end)
    {
        var s = (CountState*)state;
        for (long i = start; i < end; i++)
        {
            if (i == s->Throw) throw new InvalidOperationException("item " + i);
            Interlocked.Increment(ref s->Hits[i]);
        }
    }

    [Fact]
    public void CoversEveryItemExactlyOnce()
    {
        foreach (int count in new[] { 1, 2, 3, 7, 64, 1000, 100_003 })
            foreach (long minChunk in new long[] { 1, 5, 4096 })
            {
                var hits = new int[count];
                fixed (int* h = hits)
                {
                    var st = new CountState { Hits = h, Throw = -1 };
                    for (int rep = 0; rep < 3; rep++) CpuParallel.For(count, minChunk, &CountBody, &st);
                }
                Assert.All(hits, x => Assert.Equal(3, x));
            }
    }

    private static void NestedBody(void* state, long start, long end)
    {
        var s = (CountState*)state;
        int thread = Environment.CurrentManagedThreadId;
        var inner = new InnerState { Thread = thread, Flag = s->NestedInline };
        for (long i = start; i < end; i++)
        {
            Assert.True(CpuParallel.InsideParallelBody);
            CpuParallel.For(s->NestedCount, 1, &InnerBody, &inner);
            Interlocked.Increment(ref s->Hits[i]);
        }
    }

    private struct InnerState
    {
        public int Thread;
        public int* Flag;
    }

    private static void InnerBody(void* state, long start, long end)
    {
        var s = (InnerState*)state;
        // Inline means: same thread as the enclosing body, and one range covering everything.
        if (Environment.CurrentManagedThreadId != s->Thread || !CpuParallel.InsideParallelBody) *s->Flag = 1;
    }

    [Fact]
    public void NestedCallRunsInline()
    {
        var hits = new int[257];
        int flag = 0;
        fixed (int* h = hits)
        {
            var st = new CountState { Hits = h, Throw = -1, NestedCount = 10_000, NestedInline = &flag };
            CpuParallel.For(hits.Length, 1, &NestedBody, &st);
        }
        Assert.Equal(0, flag);
        Assert.All(hits, x => Assert.Equal(1, x));
        Assert.False(CpuParallel.InsideParallelBody);
    }

    [Fact]
    public void ExceptionPropagatesAndPoolSurvives()
    {
        var hits = new int[10_000];
        fixed (int* h = hits)
        {
            var st = new CountState { Hits = h, Throw = 7777 };
            Exception? caught = null;
            try { CpuParallel.For(10_000, 1, &CountBody, &st); }
            catch (Exception e) { caught = e; }
            var ioe = Assert.IsType<InvalidOperationException>(caught);
            Assert.Equal("item 7777", ioe.Message);
            Assert.False(CpuParallel.InsideParallelBody);

            Array.Clear(hits);
            st.Throw = -1;
            CpuParallel.For(10_000, 1, &CountBody, &st);
        }
        Assert.All(hits, x => Assert.Equal(1, x));
    }

    [Fact]
    public void ConcurrentTopLevelCallsAreSafe()
    {
        static void Run(int[] hits, int reps)
        {
            fixed (int* h = hits)
            {
                var st = new CountState { Hits = h, Throw = -1 };
                for (int r = 0; r < reps; r++) CpuParallel.For(hits.Length, 1, &CountBody, &st);
            }
        }
        var a = new int[5000];
        var b = new int[3001];
        var t1 = new Thread(() => Run(a, 200));
        var t2 = new Thread(() => Run(b, 200));
        t1.Start(); t2.Start();
        t1.Join(); t2.Join();
        Assert.All(a, x => Assert.Equal(200, x));
        Assert.All(b, x => Assert.Equal(200, x));
    }
}
