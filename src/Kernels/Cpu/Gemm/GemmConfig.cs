// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeReasoner.Kernels.Cpu.Gemm;

/// <summary>Which micro-kernel family the packed SGEMM uses.</summary>
internal enum GemmIsa { Scalar, Avx2, Avx512 }

/// <summary>
/// Register-block shape (MR × NR) and cache-block sizes (KC, MC, NC) of the packed SGEMM.
/// KC: one packed A sliver (KC × MR) stays in a third of L1 while it meets every B sliver of the panel.
/// MC: the packed A block (MC × KC) fills a quarter of L2. NC: the packed B panel (KC × NC) fills half of L2.
/// </summary>
internal sealed class GemmConfig
{
    public GemmIsa Isa { get; }
    public int MR { get; }
    public int NR { get; }
    public int KC { get; }
    public int MC { get; }
    public int NC { get; }

    public GemmConfig(GemmIsa isa, long l1Bytes, long l2Bytes)
    {
        Isa = isa;
        (MR, NR) = isa switch
        {
            GemmIsa.Avx512 => (8, 32),  // 16 zmm accumulators + 2 B vectors, A broadcast from memory
            GemmIsa.Avx2 => (6, 16),    // 12 ymm accumulators + 2 B vectors + 1 broadcast
            _ => (4, 4),
        };
        // The A sliver (MR × KC) takes a third of L1, leaving room for the B slivers streaming through.
        KC = Math.Clamp((int)(l1Bytes / 3 / (MR * sizeof(float))) / 8 * 8, 64, 1024);
        // A block and B panel share the core's own L2 (¼ + ½ of it) instead of leaving B to the L3, which on a
        // shared or virtualised host belongs to everybody's working sets.
        MC = Math.Clamp((int)(l2Bytes / 4 / (KC * sizeof(float))) / MR * MR, MR * 4, 4096 / MR * MR);
        NC = Math.Clamp((int)(l2Bytes / 2 / (KC * sizeof(float))) / NR * NR, NR * 4, 4096 / NR * NR);
        // Tuning overrides (benchmarks only): NR_GEMM_KC / NR_GEMM_MC / NR_GEMM_NC.
        KC = Override("NR_GEMM_KC", KC, 8);
        MC = Override("NR_GEMM_MC", MC, MR);
        NC = Override("NR_GEMM_NC", NC, NR);
    }

    private static int Override(string name, int value, int multiple) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int v) && v > 0 ? (v + multiple - 1) / multiple * multiple : value;

    private static GemmConfig? s_current;

    /// <summary>The configuration for this machine (best ISA, cache sizes from sysfs).</summary>
    public static GemmConfig Current => s_current ??= ForIsa(BestIsa());

    /// <summary>Same cache sizes, another ISA (tests use it to exercise the fallback kernels).</summary>
    public static GemmConfig ForIsa(GemmIsa isa)
    {
        var (l1, l2) = ReadCacheSizes();
        return new GemmConfig(isa, l1, l2);
    }

    public static GemmIsa BestIsa()
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) return GemmIsa.Avx512;
        if (Vector256.IsHardwareAccelerated && Fma.IsSupported) return GemmIsa.Avx2;
        return GemmIsa.Scalar;
    }

    /// <summary>L1d and L2 sizes of cpu0 from /sys (Linux); 48 KiB / 1 MiB when unreadable.</summary>
    private static (long L1, long L2) ReadCacheSizes()
    {
        long l1 = 48 << 10, l2 = 1 << 20;
        try
        {
            const string root = "/sys/devices/system/cpu/cpu0/cache";
            if (!Directory.Exists(root)) return (l1, l2);
            foreach (var dir in Directory.GetDirectories(root, "index*"))
            {
                string level = File.ReadAllText(Path.Combine(dir, "level")).Trim();
                string type = File.ReadAllText(Path.Combine(dir, "type")).Trim();
                long size = ParseSize(File.ReadAllText(Path.Combine(dir, "size")).Trim());
                if (size <= 0) continue;
                if (level == "1" && type == "Data") l1 = size;
                else if (level == "2" && type is "Unified" or "Data") l2 = size;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // Keep the defaults: the sizes only tune performance.
        }
        return (l1, l2);
    }

    private static long ParseSize(string s)
    {
        if (s.Length == 0) return 0;
        long mult = char.ToUpperInvariant(s[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1 };
        string digits = mult == 1 ? s : s[..^1];
        return long.TryParse(digits, out long v) ? v * mult : 0;
    }
}
