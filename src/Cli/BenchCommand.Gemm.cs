using System.CommandLine;
using NativeReasoner.Kernels.Cpu;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    private static Command BuildGemm()
    {
        var common = new Common();
        var m = new Option<int>("--m") { Description = "Rows of C.", Required = true };
        var n = new Option<int>("--n") { Description = "Columns of C.", Required = true };
        var k = new Option<int>("--k") { Description = "Inner dimension.", Required = true };
        var batch = new Option<int>("--batch") { Description = "Independent matrices per call.", DefaultValueFactory = _ => 1 };
        var transA = new Option<bool>("--trans-a") { Description = "A stored K×M (op(A) = Aᵀ)." };
        var transB = new Option<bool>("--trans-b") { Description = "B stored N×K (op(B) = Bᵀ, a Linear layer's forward)." };
        var command = new Command("gemm", "fp32 C = op(A)·op(B) with the packed CPU SGEMM; GFLOP/s = 2·batch·M·N·K / time.")
        {
            m, n, k, batch, transA, transB,
        };
        common.AddTo(command);
        command.SetAction(parse => RunGemm(parse, common, parse.GetValue(m), parse.GetValue(n), parse.GetValue(k),
            parse.GetValue(batch), parse.GetValue(transA), parse.GetValue(transB)));
        return command;
    }

    private static unsafe int RunGemm(ParseResult parse, Common common, int M, int N, int K, int batch, bool ta, bool tb)
    {
        if (M <= 0 || N <= 0 || K <= 0 || batch <= 0)
        {
            Console.Error.WriteLine("bench gemm: --m, --n, --k and --batch must be positive");
            return 2;
        }
        int threads = common.ApplyThreads(parse);
        long aN = (long)M * K, bN = (long)K * N, cN = (long)M * N;
        float* a = RandomBuffer(aN * batch, 1), b = RandomBuffer(bN * batch, 2), c = RandomBuffer(cN * batch, 3);
        try
        {
            int lda = ta ? M : K, ldb = tb ? K : N;
            var kernels = CpuKernels.Instance;
            var t = common.Measure(parse, () => kernels.Gemm(batch, ta, tb, M, N, K, 1f, a, lda, aN, b, ldb, bN, 0f, c, N, cN));
            double gflops = 2.0 * batch * M * N * K / (t.MedianMs * 1e6);
            string layout = (ta ? "T" : "N") + (tb ? "T" : "N");
            if (parse.GetValue(common.Json))
                Console.WriteLine(Json(("op", "gemm"), ("shape", new[] { M, N, K }), ("ms", t.MedianMs), ("gflops", gflops),
                    ("layout", layout), ("batch", batch), ("threads", threads), ("min_ms", t.MinMs), ("reps", t.Reps)));
            else
                Console.WriteLine($"gemm {layout} batch={batch} M={M} N={N} K={K} threads={threads}: median {F(t.MedianMs)} ms " +
                    $"(best {F(t.MinMs)}, {t.Reps} runs), {F(gflops, "F1")} GFLOP/s");
            return 0;
        }
        finally
        {
            Free(a);
            Free(b);
            Free(c);
        }
    }
}
