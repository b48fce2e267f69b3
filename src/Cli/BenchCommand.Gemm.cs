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
        var bf16 = new Option<bool>("--bf16") { Description = "bf16 operands, fp32 accumulation (GemmBf16)." };
        var command = new Command("gemm", "fp32 C = op(A)·op(B) with the packed CPU SGEMM; GFLOP/s = 2·batch·M·N·K / time.")
        {
            m, n, k, batch, transA, transB, bf16,
        };
        common.AddTo(command);
        command.SetAction(parse => RunGemm(parse, common, parse.GetValue(m), parse.GetValue(n), parse.GetValue(k),
            parse.GetValue(batch), parse.GetValue(transA), parse.GetValue(transB), parse.GetValue(bf16)));
        return command;
    }

    private static unsafe int RunGemm(ParseResult parse, Common common, int M, int N, int K, int batch, bool ta, bool tb, bool bf16)
    {
        if (M <= 0 || N <= 0 || K <= 0 || batch <= 0)
        {
            Console.Error.WriteLine("nr bench gemm: --m, --n, --k and --batch must be positive");
            return 2;
        }
        int threads = common.ApplyThreads(parse);
        long aN = (long)M * K, bN = (long)K * N, cN = (long)M * N;
        float* a = RandomBuffer(aN * batch, 1), b = RandomBuffer(bN * batch, 2), c = RandomBuffer(cN * batch, 3);
        var kernels = CpuKernels.Instance;
        // bf16 copies of the same operands (the fp32 buffers hold at least as many bytes).
        ushort* a16 = (ushort*)RandomBuffer(aN * batch, 4), b16 = (ushort*)RandomBuffer(bN * batch, 5);
        kernels.FloatToBFloat16(a, a16, aN * batch);
        kernels.FloatToBFloat16(b, b16, bN * batch);
        try
        {
            int lda = ta ? M : K, ldb = tb ? K : N;
            var t = bf16
                ? common.Measure(parse, () => kernels.GemmBf16(batch, ta, tb, M, N, K, 1f, a16, lda, aN, b16, ldb, bN, 0f, c, N, cN))
                : common.Measure(parse, () => kernels.Gemm(batch, ta, tb, M, N, K, 1f, a, lda, aN, b, ldb, bN, 0f, c, N, cN));
            double gflops = 2.0 * batch * M * N * K / (t.MedianMs * 1e6);
            string layout = (ta ? "T" : "N") + (tb ? "T" : "N");
            if (parse.GetValue(common.Json))
                Console.WriteLine(Json(("op", bf16 ? "gemm_bf16" : "gemm"), ("shape", new[] { M, N, K }), ("ms", t.MedianMs), ("gflops", gflops),
                    ("layout", layout), ("batch", batch), ("threads", threads), ("min_ms", t.MinMs), ("cpu_ms", t.CpuMs), ("reps", t.Reps)));
            else
                Console.WriteLine($"{(bf16 ? "gemm_bf16" : "gemm")} {layout} batch={batch} M={M} N={N} K={K} threads={threads}: median {F(t.MedianMs)} ms " +
                    $"(best {F(t.MinMs)}, {t.Reps} runs), {F(gflops, "F1")} GFLOP/s");
            return 0;
        }
        finally
        {
            Free(a);
            Free(b);
            Free(c);
            Free((float*)a16);
            Free((float*)b16);
        }
    }
}
