// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Cpu.Gemm;

/// <summary>
/// A tiny lock-free pool of 64-byte aligned native scratch blocks (packing panels, attention tiles).
/// Rent takes any cached block and grows it if it is too small; Return puts it back. In steady state a
/// kernel call therefore allocates nothing, and blocks are not tied to threads (no leak when a caller
/// thread dies).
/// </summary>
internal static unsafe class GemmScratch
{
    private const int Header = 64; // keeps the payload 64-byte aligned; the capacity lives in the header
    private static readonly nint[] s_slots = new nint[16];
    private static long s_bytes, s_peakBytes;

    /// <summary>Native bytes the scratch blocks hold now (rented or cached): per-tile scratch, not O(T²).</summary>
    public static long Bytes => Volatile.Read(ref s_bytes);

    /// <summary>High-water mark of <see cref="Bytes"/> since the last <see cref="ResetPeak"/>.</summary>
    public static long PeakBytes => Volatile.Read(ref s_peakBytes);

    public static void ResetPeak() => Volatile.Write(ref s_peakBytes, Volatile.Read(ref s_bytes));

    private static void Account(long delta)
    {
        long now = Interlocked.Add(ref s_bytes, delta);
        long peak;
        while (now > (peak = Volatile.Read(ref s_peakBytes)) && Interlocked.CompareExchange(ref s_peakBytes, now, peak) != peak) { }
    }

    /// <summary>Returns a block of at least <paramref name="floats"/> floats (contents undefined).</summary>
    public static float* Rent(long floats)
    {
        long bytes = Math.Max(floats, 16) * sizeof(float);
        for (int i = 0; i < s_slots.Length; i++)
        {
            nint p = Volatile.Read(ref s_slots[i]);
            if (p == 0 || Interlocked.CompareExchange(ref s_slots[i], 0, p) != p) continue;
            if (*(long*)p >= bytes) return (float*)(p + Header);
            Account(-*(long*)p);
            NativeMemory.AlignedFree((void*)p);
            break;
        }
        // Round up so that slightly larger later requests reuse the block.
        long cap = (bytes + 65535) & ~65535L;
        byte* fresh = (byte*)NativeMemory.AlignedAlloc((nuint)(cap + Header), 64);
        if (fresh == null) throw new OutOfMemoryException("GEMM scratch");
        *(long*)fresh = cap;
        Account(cap);
        return (float*)(fresh + Header);
    }

    public static void Return(float* block)
    {
        nint p = (nint)((byte*)block - Header);
        for (int i = 0; i < s_slots.Length; i++)
            if (Interlocked.CompareExchange(ref s_slots[i], p, 0) == 0) return;
        Account(-*(long*)p);
        NativeMemory.AlignedFree((void*)p);
    }
}
