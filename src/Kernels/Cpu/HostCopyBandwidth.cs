using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// Host memory copy bandwidth over the worker threads, on buffers far larger than the caches: the ceiling of a decode
/// step that streams its weights once. A copy reads and writes each byte; a decode step only reads, and a read-only
/// stream moves bytes faster than a copy's read half (on a 2-core EPYC, about as fast as the copy's reads and writes
/// together), so the bound of a decode is its weight bytes per token ÷ <see cref="MeasureRead"/>'s rate.
/// </summary>
public static unsafe class HostCopyBandwidth
{
    /// <summary>(GB/s of source read, GB/s read + written) of the best of <paramref name="trials"/> copies.</summary>
    public static (double Read, double Copy) Measure(long bytes, int trials)
    {
        if (bytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "the buffer needs at least one byte");
        if (trials <= 0) throw new ArgumentOutOfRangeException(nameof(trials), trials, "at least one copy is timed");
        byte* src = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64),
            dst = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            new Span<byte>(src, (int)Math.Min(bytes, int.MaxValue)).Fill(1);
            new Span<byte>(dst, (int)Math.Min(bytes, int.MaxValue)).Clear();
            var job = new CopyJob { Src = src, Dst = dst };
            double best = double.MaxValue;
            for (int t = 0; t < trials + 1; t++)
            {
                var sw = Stopwatch.StartNew();
                CpuParallel.For(bytes, 1 << 20, &CopyBody, &job);
                if (t > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds); // the first copy warms the pages
            }
            return (bytes / best / 1e9, 2 * bytes / best / 1e9);
        }
        finally
        {
            NativeMemory.AlignedFree(src);
            NativeMemory.AlignedFree(dst);
        }
    }

    /// <summary>
    /// GB/s of a read-only stream (every 64-byte line of the buffer loaded and summed) over the worker threads, best of
    /// <paramref name="trials"/> passes.
    /// </summary>
    public static double MeasureRead(long bytes, int trials)
    {
        if (bytes < 64)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "the buffer needs at least 64 bytes");
        if (trials <= 0) throw new ArgumentOutOfRangeException(nameof(trials), trials, "at least one pass is timed");
        bytes &= ~63L;
        byte* src = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            for (long i = 0; i < bytes; i += int.MaxValue & ~63)
                new Span<byte>(src + i, (int)Math.Min(bytes - i, int.MaxValue & ~63)).Fill(1);
            // One sum slot per 1 MiB chunk, so the loads cannot be optimised away and no two threads share a line.
            long chunks = (bytes + (1 << 20) - 1) >> 20;
            var sums = new ulong[chunks * 8];
            double best = double.MaxValue;
            fixed (ulong* s = sums)
            {
                var job = new CopyJob { Src = src, Sums = s };
                for (int t = 0; t < trials + 1; t++)
                {
                    var sw = Stopwatch.StartNew();
                    CpuParallel.For(bytes, 1 << 20, &ReadBody, &job);
                    if (t > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                }
            }
            if (sums[0] == 0) throw new InvalidOperationException("the read benchmark summed nothing");
            return bytes / best / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(src);
        }
    }

    private struct CopyJob
    {
        public byte* Src, Dst;
        public ulong* Sums;
    }

    private static void ReadBody(void* state, long start, long end)
    {
        var job = (CopyJob*)state;
        // Four independent accumulators of 64-bit lanes: loads, not adds, are the limit.
        var a0 = Vector256<ulong>.Zero;
        var a1 = Vector256<ulong>.Zero;
        long i = start;
        for (; i + 64 <= end; i += 64)
        {
            a0 += Vector256.Load((ulong*)(job->Src + i));
            a1 += Vector256.Load((ulong*)(job->Src + i + 32));
        }
        ulong sum = Vector256.Sum(a0 + a1);
        for (; i < end; i++) sum += job->Src[i];
        job->Sums[(start >> 20) * 8] += sum;
    }

    private static void CopyBody(void* state, long start, long end)
    {
        var job = (CopyJob*)state;
        Buffer.MemoryCopy(job->Src + start, job->Dst + start, end - start, end - start);
    }
}
