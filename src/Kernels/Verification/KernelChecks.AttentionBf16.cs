using NativeReasoner.Kernels.Cuda;

namespace NativeReasoner.Kernels.Verification;

// Checks of the bf16 tensor-core flash attention (CudaKernels.AttentionForwardBf16 / AttentionBackwardBf16,
// kernels/cuda/attention_bf16.cu). These ops exist only on CudaKernels (they are not part of IKernels): on any
// other backend — the suite also runs on CpuKernels — a check runs nothing and records nothing, so it passes
// there vacuously; it is meaningful on the CUDA emulator and on a GPU.
//
// Oracle: ReferenceKernels.AttentionForward/Backward (double accumulation) on the bf16-ROUNDED inputs, so input
// rounding is not counted as error. What remains is the kernels' own bf16 steps:
//   forward:  P rounded to bf16 before P·V (relative 2^-9 ≈ 2e-3 per weight, random in sign, so the error of o
//             is of that order relative to o) and o itself stored as bf16 (≤ 2^-9 relative, ~1.1e-3 rms);
//             together ~2–4e-3 relative L2 (≤ 2.2e-3 seen on the emulator). Tolerance 1.5e-2: 4× margin over the
//             estimate, still far below what any layout or masking mistake gives (a wrong key, a missed rescale or
//             a transposed fragment is O(1e-1..1)). lse is fp32 throughout (the bf16 products are exact in fp32, the sums fp32; ~5e-8 seen): 1e-5.
//   backward: Pᵀ and dSᵀ rounded to bf16 before the dV, dK, dQ products, Δ = rowsum(dO ⊙ o) taken from the
//             bf16 o (as in FlashAttention-2; the oracle uses the exact P·dP), outputs stored as bf16: each a
//             2^-9-scale relative error, a few of them stacked: ~3–6e-3 expected (≤ 3.3e-3 seen on the emulator).
//             Tolerance 2e-2 (same reasoning).
// Inputs: q in [-3, 3], k, v, dO in [-1, 1] with scale = 1/√Dk, so the scaled scores have unit spread and the
// softmax has real peaks (online-softmax rescaling is exercised, not a flat average).
// Sizes stay small (the emulator runs every mma as three warp exchanges): 64-row tiles, a partial tile (80, 130),
// Tq < Tk and Tq > Tk causal (queries that see no key: o = 0, lse = −∞), the MLA-like Dk ≠ Dv split, one case
// per compiled head-dim variant (≤64, ≤128, 192/128, 256), and no keys at all (Tk = 0: o = 0, lse = −∞, dq = 0).
// Grouped K/V heads (-g2, -g3, -g7: query heads per K/V head, MQA at -g7 with BH 7): the oracle is the reference
// with the same kvGroup, itself checked against repeated-K/V multi-head attention by attention/gqa/*.
public static unsafe partial class KernelChecks
{
    static partial void AddAttentionBf16(List<KernelCheck> list)
    {
        (int BH, int Tq, int Tk, int Dk, int Dv, bool Causal, int Group)[] cases =
        [
            (1, 16, 16, 64, 64, false, 1),
            (2, 64, 64, 64, 64, true, 1),
            (1, 80, 80, 64, 64, true, 1),
            (1, 130, 130, 64, 64, false, 1),
            (2, 130, 130, 64, 64, true, 1),
            (1, 16, 80, 64, 64, true, 1),
            (1, 80, 16, 64, 64, true, 1),
            (2, 80, 80, 48, 32, true, 1),
            (1, 80, 80, 48, 32, false, 1),
            (2, 17, 45, 16, 16, false, 1),
            (1, 70, 70, 128, 128, true, 1),
            (1, 33, 33, 192, 128, false, 1),
            (1, 20, 20, 256, 256, true, 1),
            (1, 5, 0, 16, 16, false, 1),
            (6, 80, 80, 64, 64, true, 3),   // two K/V heads, partial query tile
            (7, 16, 80, 64, 64, true, 7),   // MQA after a cached prefix
            (4, 130, 130, 48, 32, false, 2), // several query tiles per head: the step loop crosses heads
            (2, 80, 16, 16, 16, true, 2),   // Tq > Tk: queries that see no key
        ];
        foreach (var c in cases)
        {
            string tag = $"bh{c.BH}-{c.Tq}x{c.Tk}-d{c.Dk}x{c.Dv}" + (c.Causal ? "-causal" : "")
                + (c.Group > 1 ? $"-g{c.Group}" : "");
            list.Add(new KernelCheck($"attention-bf16/forward/{tag}",
                ctx => AttentionBf16Forward(ctx, c.BH, c.Tq, c.Tk, c.Dk, c.Dv, c.Causal, c.Group)));
            list.Add(new KernelCheck($"attention-bf16/backward/{tag}",
                ctx => AttentionBf16Backward(ctx, c.BH, c.Tq, c.Tk, c.Dk, c.Dv, c.Causal, c.Group)));
        }
        list.Add(new KernelCheck("attention-bf16/forward/rejects-d40", ctx =>
        {
            if (ctx.K is not CudaKernels cuda) return;
            ushort* x = ctx.Garbage<ushort>(40);
            float* l = ctx.Garbage<float>(1);
            bool threw = false;
            try
            {
                cuda.AttentionForwardBf16(x, x, x, x, l, 1, 1, 1, 40, 40, 1f, false, 1);
            }
            catch (ArgumentException)
            {
                threw = true;
            }
            ctx.Require(threw, "a head dim that is not a multiple of 16 must be rejected with an ArgumentException");
        }));
    }

    private const double AttentionBf16OutputTol = 1.5e-2, AttentionBf16GradTol = 2e-2, AttentionBf16LseTol = 1e-5;

    /// <summary>Random values rounded to bf16: the bits for the device, the rounded floats for the reference.</summary>
    private static (ushort[] Bits, float[] Values) RandBf16(KernelCheckContext ctx, long n, float lo, float hi)
    {
        var x = ctx.Rand(n, lo, hi);
        var bits = new ushort[n];
        fixed (float* p = x) fixed (ushort* b = bits)
        {
            ctx.Ref.FloatToBFloat16(p, b, n);
            ctx.Ref.BFloat16ToFloat(b, p, n);
        }
        return (bits, x);
    }

    private static float[] Bf16ToFloat(KernelCheckContext ctx, ushort[] bits)
    {
        var f = new float[bits.Length];
        fixed (ushort* b = bits) fixed (float* p = f) ctx.Ref.BFloat16ToFloat(b, p, bits.Length);
        return f;
    }

    private static void AttentionBf16Forward(KernelCheckContext ctx, int BH, int Tq, int Tk, int Dk, int Dv, bool causal,
        int group)
    {
        if (ctx.K is not CudaKernels cuda) return;
        float scale = 1f / MathF.Sqrt(Dk);
        int kvRows = BH / group;
        var q = RandBf16(ctx, (long)BH * Tq * Dk, -3f, 3f);
        var k = RandBf16(ctx, (long)kvRows * Tk * Dk, -1f, 1f);
        var v = RandBf16(ctx, (long)kvRows * Tk * Dv, -1f, 1f);
        long nO = (long)BH * Tq * Dv, nL = (long)BH * Tq;
        var oRef = new float[nO];
        var lseRef = new float[nL];
        fixed (float* pq = q.Values) fixed (float* pk = k.Values) fixed (float* pv = v.Values)
        fixed (float* po = oRef) fixed (float* pl = lseRef)
            ctx.Ref.AttentionForward(pq, pk, pv, po, pl, BH, Tq, Tk, Dk, Dv, scale, causal, group);

        ushort* o = ctx.Garbage<ushort>(nO);
        float* lse = ctx.Garbage<float>(nL);
        cuda.AttentionForwardBf16(ctx.Up(q.Bits), ctx.Up(k.Bits), ctx.Up(v.Bits), o, lse, BH, Tq, Tk, Dk, Dv, scale, causal,
            group);
        ctx.Close(Bf16ToFloat(ctx, ctx.Down(o, nO)), oRef, AttentionBf16OutputTol, "o");
        ctx.Close(ctx.Down(lse, nL), lseRef, AttentionBf16LseTol, "lse");
    }

    private static void AttentionBf16Backward(KernelCheckContext ctx, int BH, int Tq, int Tk, int Dk, int Dv, bool causal,
        int group)
    {
        if (ctx.K is not CudaKernels cuda) return;
        float scale = 1f / MathF.Sqrt(Dk);
        int kvRows = BH / group;
        var q = RandBf16(ctx, (long)BH * Tq * Dk, -3f, 3f);
        var k = RandBf16(ctx, (long)kvRows * Tk * Dk, -1f, 1f);
        var v = RandBf16(ctx, (long)kvRows * Tk * Dv, -1f, 1f);
        var dO = RandBf16(ctx, (long)BH * Tq * Dv, -1f, 1f);
        long nQ = (long)BH * Tq * Dk, nK = (long)kvRows * Tk * Dk, nV = (long)kvRows * Tk * Dv, nO = (long)BH * Tq * Dv;
        long nL = (long)BH * Tq;

        // The forward's o (rounded to bf16, as the bf16 forward would store it) and lse come from the reference,
        // so this check does not depend on the bf16 forward; the reference backward recomputes P itself.
        var oRef = new float[nO];
        var lseRef = new float[nL];
        var dqRef = new float[nQ];
        var dkRef = new float[nK];
        var dvRef = new float[nV];
        var oBits = new ushort[nO];
        fixed (float* pq = q.Values) fixed (float* pk = k.Values) fixed (float* pv = v.Values) fixed (float* pdo = dO.Values)
        fixed (float* po = oRef) fixed (float* pl = lseRef) fixed (ushort* pob = oBits)
        fixed (float* pdq = dqRef) fixed (float* pdk = dkRef) fixed (float* pdv = dvRef)
        {
            ctx.Ref.AttentionForward(pq, pk, pv, po, pl, BH, Tq, Tk, Dk, Dv, scale, causal, group);
            ctx.Ref.FloatToBFloat16(po, pob, nO);
            ctx.Ref.AttentionBackward(pq, pk, pv, po, pl, pdo, pdq, pdk, pdv, BH, Tq, Tk, Dk, Dv, scale, causal, group);
        }

        ushort* dq = ctx.Garbage<ushort>(nQ);
        ushort* dk = ctx.Garbage<ushort>(nK);
        ushort* dv = ctx.Garbage<ushort>(nV);
        cuda.AttentionBackwardBf16(ctx.Up(q.Bits), ctx.Up(k.Bits), ctx.Up(v.Bits), ctx.Up(oBits), ctx.Up(lseRef), ctx.Up(dO.Bits),
            dq, dk, dv, BH, Tq, Tk, Dk, Dv, scale, causal, group);
        ctx.Close(Bf16ToFloat(ctx, ctx.Down(dq, nQ)), dqRef, AttentionBf16GradTol, "dq");
        ctx.Close(Bf16ToFloat(ctx, ctx.Down(dk, nK)), dkRef, AttentionBf16GradTol, "dk");
        ctx.Close(Bf16ToFloat(ctx, ctx.Down(dv, nV)), dvRef, AttentionBf16GradTol, "dv");
    }
}
