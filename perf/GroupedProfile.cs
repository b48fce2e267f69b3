using NativeReasoner.Kernels.Cpu;

namespace NativeReasoner.Perf;

/// <summary>
/// `perf -- profile-grouped`: thread CPU time per call of the bench-tiny training step's grouped expert GEMMs
/// (256 experts × 64 rows, hidden 128, expert width 32) in each layout the backward and forward use. Run with
/// NR_NUM_THREADS=1 (every item on this thread); A/B two builds in alternating processes. The operands
/// (256 experts' weights, ~12 MiB a call) stream from memory as in the model, so expect ±20% run to run.
/// </summary>
public static unsafe class GroupedProfile
{
    public static void Run(int reps)
    {
        const int count = 256, rows = 64, d = 128, inter = 32;
        // (name, transA, transB, n, k per item = rows for Aᵀ·B else the inner size, m per item)
        (string Name, bool TA, bool TB, int N, int M, int K)[] shapes =
        [
            ("fwd x·Wgᵀ  NT 64x32x128", false, true, inter, rows, d),
            ("fwd h·Wdᵀ  NT 64x128x32", false, true, d, rows, inter),
            ("bwd dY·Wd  NN 64x32x128", false, false, inter, rows, d),
            ("bwd dY·Wg  NN 64x128x32", false, false, d, rows, inter),
            ("bwd dYᵀ·X  TN 32x128x64", true, false, d, inter, rows),
            ("bwd dYᵀ·H  TN 128x32x64", true, false, inter, d, rows),
        ];
        var rng = new Random(1);
        foreach (var (name, ta, tb, n, m, k) in shapes)
        {
            int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
            long aLen = (long)m * k, bLen = (long)k * n, cLen = (long)m * n;
            var a = new float[count * aLen]; var b = new float[count * bLen]; var c = new float[count * cLen];
            for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble();
            for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble();
            var ms = new int[count]; var ks = new int[count];
            Array.Fill(ms, m); Array.Fill(ks, k);
            var pa = new nint[count]; var pb = new nint[count]; var pc = new nint[count];
            fixed (float* fa = a, fb = b, fc = c)
            fixed (int* pm = ms, pk = ks)
            fixed (nint* ppa = pa, ppb = pb, ppc = pc)
            {
                for (int i = 0; i < count; i++) { pa[i] = (nint)(fa + i * aLen); pb[i] = (nint)(fb + i * bLen); pc[i] = (nint)(fc + i * cLen); }
                for (int w = 0; w < 3; w++)
                    CpuKernels.Instance.GemmGrouped(count, ta, tb, pm, n, pk, 1f, (float**)ppa, lda, (float**)ppb, ldb, 0f, (float**)ppc, ldc);
                double best = double.MaxValue;
                for (int r = 0; r < reps; r++)
                {
                    double t0 = DecodeProfile.ThreadCpuMs();
                    CpuKernels.Instance.GemmGrouped(count, ta, tb, pm, n, pk, 1f, (float**)ppa, lda, (float**)ppb, ldb, 0f, (float**)ppc, ldc);
                    best = Math.Min(best, DecodeProfile.ThreadCpuMs() - t0);
                }
                double gflops = 2.0 * count * m * n * k / (best * 1e-3) / 1e9;
                Console.WriteLine($"{name}: {best:F3} ms thread CPU (best of {reps}), {gflops:F1} GFLOP/s");
            }
        }
    }
}
