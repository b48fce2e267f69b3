using System.CommandLine;
using System.Diagnostics;
using NativeReasoner.Kernels.Cpu;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    private static Command BuildAttention()
    {
        var common = new Common();
        var batch = new Option<int>("--batch") { Description = "Batch size B.", DefaultValueFactory = _ => 1 };
        var heads = new Option<int>("--heads") { Description = "Heads H.", DefaultValueFactory = _ => 8 };
        var kvHeads = new Option<int>("--kv-heads")
        {
            Description = "K/V heads (grouped-query attention; default: --heads). --heads must be a multiple of it.",
        };
        var seq = new Option<int>("--seq") { Description = "Sequence length T (queries = keys).", Required = true };
        var headDim = new Option<int>("--head-dim") { Description = "q/k head dim D.", DefaultValueFactory = _ => 64 };
        var vHeadDim = new Option<int>("--v-head-dim") { Description = "v head dim (default: --head-dim; differs in MLA)." };
        var causal = new Option<bool>("--causal") { Description = "Causal mask." };
        var backward = new Option<bool>("--backward") { Description = "Time forward + backward (a training step's attention)." };
        var command = new Command("attention",
            "Fused flash-style attention. GFLOP/s counts the useful products only: 2·B·H·pairs·(D + Dv) forward " +
            "(pairs = T² or T(T+1)/2 causal), 2.5× that for the backward's five products.")
        {
            batch, heads, kvHeads, seq, headDim, vHeadDim, causal, backward,
        };
        common.AddTo(command);
        command.SetAction(parse =>
        {
            int d = parse.GetValue(headDim);
            int dv = parse.GetValue(vHeadDim);
            int h = parse.GetValue(heads), hkv = parse.GetValue(kvHeads);
            return RunAttention(parse, common, parse.GetValue(batch), h, hkv > 0 ? hkv : h, parse.GetValue(seq), d,
                dv > 0 ? dv : d, parse.GetValue(causal), parse.GetValue(backward));
        });
        return command;
    }

    private static unsafe int RunAttention(ParseResult parse, Common common, int B, int H, int Hkv, int T, int D, int Dv,
        bool causal, bool backward)
    {
        if (B <= 0 || H <= 0 || Hkv <= 0 || T <= 0 || D <= 0 || Dv <= 0)
        {
            Console.Error.WriteLine("nr bench attention: sizes must be positive");
            return 2;
        }
        if (H % Hkv != 0)
        {
            Console.Error.WriteLine($"nr bench attention: --heads {H} must be a multiple of --kv-heads {Hkv}");
            return 2;
        }
        int threads = common.ApplyThreads(parse);
        int BH = B * H, group = H / Hkv;
        // q, o, dO, dq: [B·H, T, ·]; k, v, dk, dv: [B·Hkv, T, ·] (read in place by the H / Hkv query heads of a group).
        long qN = (long)BH * T * D, oN = (long)BH * T * Dv, lN = (long)BH * T;
        long kN = qN / group, vN = oN / group;
        float* q = RandomBuffer(qN, 11), k = RandomBuffer(kN, 12), v = RandomBuffer(vN, 13), o = RandomBuffer(oN, 14);
        float* lse = RandomBuffer(lN, 15);
        float* dO = backward ? RandomBuffer(oN, 16) : null, dq = backward ? RandomBuffer(qN, 17) : null;
        float* dk = backward ? RandomBuffer(kN, 18) : null, dv = backward ? RandomBuffer(vN, 19) : null;
        try
        {
            var kernels = CpuKernels.Instance;
            float scale = 1f / MathF.Sqrt(D);
            CpuKernels.ResetScratchPeak();
            var t = common.Measure(parse, () =>
            {
                kernels.AttentionForward(q, k, v, o, lse, BH, T, T, D, Dv, scale, causal, group);
                if (backward)
                    kernels.AttentionBackward(q, k, v, o, lse, dO, dq, dk, dv, BH, T, T, D, Dv, scale, causal, group);
            });
            double pairs = causal ? (double)T * (T + 1) / 2 : (double)T * T;
            double flops = 2.0 * BH * pairs * (D + Dv) * (backward ? 3.5 : 1.0);
            double gflops = flops / (t.MedianMs * 1e6);
            // Memory: the tensors the caller owns are O(B·H·T·D); the kernel itself only holds per-tile scratch.
            long ioBytes = (qN + kN + vN + oN + lN + (backward ? qN + kN + vN + oN : 0)) * sizeof(float);
            long scratch = CpuKernels.ScratchPeakBytes;
            double rssMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
            string op = backward ? "attention_fwd_bwd" : "attention_fwd";
            if (parse.GetValue(common.Json))
                Console.WriteLine(Json(("op", op), ("shape", new[] { B, H, T, D, Dv }), ("kv_heads", Hkv),
                    ("ms", t.MedianMs), ("gflops", gflops),
                    ("causal", causal), ("threads", threads), ("min_ms", t.MinMs), ("cpu_ms", t.CpuMs), ("reps", t.Reps),
                    ("scratch_bytes", scratch), ("io_bytes", ioBytes), ("peak_rss_mb", rssMb)));
            else
                Console.WriteLine($"{op} B={B} H={H}{(Hkv != H ? $" Hkv={Hkv}" : "")} T={T} D={D} Dv={Dv} causal={causal} " +
                    $"threads={threads}: median {F(t.MedianMs)} ms " +
                    $"(best {F(t.MinMs)}, {t.Reps} runs), {F(gflops, "F1")} GFLOP/s; scratch peak {scratch / 1024.0:F0} KiB, " +
                    $"tensors {ioBytes / 1048576.0:F1} MiB, peak RSS {rssMb:F0} MiB");
            return 0;
        }
        finally
        {
            Free(q); Free(k); Free(v); Free(o); Free(lse);
            if (backward) { Free(dO); Free(dq); Free(dk); Free(dv); }
        }
    }
}
