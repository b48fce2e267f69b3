// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner.Kernels.Verification;

/// <summary>
/// fp32 attention forward/backward against the reference at awkward shapes (single keys, odd lengths, more
/// than one 32-wide tile, cached prefixes Tq &lt; Tk, decode Tq = 1, queries that see no key when Tq &gt; Tk
/// under causal, Dk ≠ Dv, the largest head dims), and the CUDA-only MLA decode against a composition of the
/// reference.
/// </summary>
public static unsafe partial class KernelChecks
{
    static partial void AddAttention(List<KernelCheck> list)
    {
        (int BH, int Tq, int Tk, int Dk, int Dv)[] shapes =
        [
            (1, 1, 1, 16, 16),
            (3, 7, 7, 24, 16),
            (1, 65, 65, 48, 32),
            (3, 130, 130, 16, 16),
            (3, 5, 37, 24, 16),    // cached prefix
            (1, 1, 37, 48, 32),    // decode: sees the whole cache even under causal
            (3, 1, 37, 16, 16),
            (1, 5, 37, 48, 32),
            (3, 65, 65, 24, 16),
            (1, 130, 130, 48, 32),
            (3, 9, 4, 16, 16),     // causal: the first 5 queries see no key (o = 0, lse = −∞, zero gradients)
            (3, 40, 40, 96, 64),   // the ≤ 128-column kernels
            (1, 33, 70, 192, 128), // MLA's head dims, ≤ 256-column kernels
            (1, 20, 20, 256, 256), // the largest supported head dim
        ];
        foreach (var (bh, tq, tk, dk, dv) in shapes)
            foreach (bool causal in new[] { false, true })
            {
                string tag = $"bh{bh}-q{tq}-k{tk}-d{dk}x{dv}{(causal ? "-causal" : "")}";
                list.Add(new KernelCheck($"attention/forward/{tag}", ctx => AttentionForwardCheck(ctx, bh, tq, tk, dk, dv, causal)));
                list.Add(new KernelCheck($"attention/backward/{tag}", ctx => AttentionBackwardCheck(ctx, bh, tq, tk, dk, dv, causal)));
            }

        // Head dims past the limit must fail loudly on CUDA (the CPU backend has no limit: nothing to check there).
        list.Add(new KernelCheck("attention/forward/head-dim-over-limit", ctx =>
        {
            if (ctx.K is not CudaKernels) return;
            int d = CudaKernels.MaxAttentionHeadDim + 1;
            float* q = ctx.Up(ctx.Rand(d)), o = ctx.Garbage<float>(d), lse = ctx.Garbage<float>(1);
            bool threw = false;
            try { ctx.K.AttentionForward(q, q, q, o, lse, 1, 1, 1, d, d, 1f, false, 1); }
            catch (NotSupportedException) { threw = true; }
            ctx.Require(threw, $"head dim {d} did not throw NotSupportedException");
        }));

        // MLA decode (CUDA only). Lengths 1, 17, 300 under a maxLen that is not any of them; split 64 runs several
        // splits and the merge (a split past a short sequence contributes nothing); split 0 is the automatic choice.
        int[] lens = [1, 17, 300];
        list.Add(new KernelCheck("mla/decode/f32/h5-32+16-split64", ctx => MlaDecodeCheck(ctx, false, lens, 311, 5, 32, 16, 64, 1e-5)));
        list.Add(new KernelCheck("mla/decode/f32/h40-32+16-auto", ctx => MlaDecodeCheck(ctx, false, lens, 300, 40, 32, 16, 0, 1e-5)));
        list.Add(new KernelCheck("mla/decode/f32/h8-512+64-split32", ctx => MlaDecodeCheck(ctx, false, [33, 70], 70, 8, 512, 64, 32, 1e-5)));
        // bf16 cache with dims that are not multiples of 8: the CUDA-core kernel, fp32 math on the converted cache.
        list.Add(new KernelCheck("mla/decode/bf16-cuda-cores/h5-20+7-split64", ctx => MlaDecodeCheck(ctx, true, lens, 300, 5, 20, 7, 64, 1e-5)));
        // bf16 cache on the tensor cores: q and p are rounded to bf16 (relative 2⁻⁹ each, fp32 sums). Against the
        // fp32 math on the same bf16 cache o lands ~1e-3 away (seen on the emulator: ≤ 1.8e-3 at 576/512, ≤ 6e-4
        // at the small dims), so 8e-3. Against the reference on the bf16-rounded q as well only the rounding of p
        // is left (seen: ≤ 1.2e-3), so 4e-3 there: a missed rescale of O between tiles costs ≥ 1.6e-2 at these
        // shapes, a wrong fragment or a lost tile O(1).
        const double tcTol = 8e-3;
        list.Add(new KernelCheck("mla/decode/bf16-tensor-cores/h20-32+16-split64", ctx => MlaDecodeCheck(ctx, true, lens, 311, 20, 32, 16, 64, tcTol, 4e-3)));
        list.Add(new KernelCheck("mla/decode/bf16-tensor-cores/h70-96+16-lens1,17,160-split64", ctx => MlaDecodeCheck(ctx, true, [1, 17, 160], 160, 70, 96, 16, 64, tcTol, 4e-3)));
        list.Add(new KernelCheck("mla/decode/bf16-tensor-cores/h16-512+64-auto", ctx => MlaDecodeCheck(ctx, true, [40, 77], 80, 16, 512, 64, 0, tcTol, 4e-3)));
    }

    private static void AttentionForwardCheck(KernelCheckContext ctx, int BH, int Tq, int Tk, int Dk, int Dv, bool causal)
    {
        var q = ctx.Rand((long)BH * Tq * Dk);
        var k = ctx.Rand((long)BH * Tk * Dk);
        var v = ctx.Rand((long)BH * Tk * Dv);
        float scale = 2f / MathF.Sqrt(Dk); // peaky enough that the running max moves between key tiles
        float* o = ctx.Garbage<float>((long)BH * Tq * Dv), lse = ctx.Garbage<float>((long)BH * Tq);
        ctx.K.AttentionForward(ctx.Up(q), ctx.Up(k), ctx.Up(v), o, lse, BH, Tq, Tk, Dk, Dv, scale, causal, 1);

        var oRef = new float[(long)BH * Tq * Dv];
        var lseRef = new float[(long)BH * Tq];
        fixed (float* pq = q, pk = k, pv = v, po = oRef, pl = lseRef)
            ctx.Ref.AttentionForward(pq, pk, pv, po, pl, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        ctx.Close(ctx.Down(o, oRef.Length), oRef, 1e-5, "o");
        ctx.Close(ctx.Down(lse, lseRef.Length), lseRef, 1e-5, "lse");
    }

    private static void AttentionBackwardCheck(KernelCheckContext ctx, int BH, int Tq, int Tk, int Dk, int Dv, bool causal)
    {
        var q = ctx.Rand((long)BH * Tq * Dk);
        var k = ctx.Rand((long)BH * Tk * Dk);
        var v = ctx.Rand((long)BH * Tk * Dv);
        var dO = ctx.Rand((long)BH * Tq * Dv);
        float scale = 2f / MathF.Sqrt(Dk);
        // o and lse of the forward, from the reference, so this checks the backward alone.
        var o = new float[(long)BH * Tq * Dv];
        var lse = new float[(long)BH * Tq];
        var dqRef = new float[q.Length];
        var dkRef = new float[k.Length];
        var dvRef = new float[v.Length];
        fixed (float* pq = q, pk = k, pv = v, po = o, pl = lse, pg = dO, rq = dqRef, rk = dkRef, rv = dvRef)
        {
            ctx.Ref.AttentionForward(pq, pk, pv, po, pl, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
            ctx.Ref.AttentionBackward(pq, pk, pv, po, pl, pg, rq, rk, rv, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        }
        float* dq = ctx.Garbage<float>(q.Length), dk = ctx.Garbage<float>(k.Length), dv = ctx.Garbage<float>(v.Length);
        ctx.K.AttentionBackward(ctx.Up(q), ctx.Up(k), ctx.Up(v), ctx.Up(o), ctx.Up(lse), ctx.Up(dO), dq, dk, dv,
            BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        ctx.Close(ctx.Down(dq, q.Length), dqRef, 1e-5, "dq");
        ctx.Close(ctx.Down(dk, k.Length), dkRef, 1e-5, "dk");
        ctx.Close(ctx.Down(dv, v.Length), dvRef, 1e-5, "dv");
    }

    /// <summary>
    /// <see cref="CudaKernels.MlaDecode"/> against the reference attention per sequence: the heads as Tq = heads
    /// queries (non-causal, so each sees the whole sequence), k = the first len cache rows [len, Dq], v = their
    /// first dLatent columns. A bf16 cache is compared with the reference run on the bf16-rounded values.
    /// MlaDecode exists on the CUDA backend only: on any other backend (the CPU run of the suite) the check
    /// returns at once and passes vacuously.
    /// </summary>
    private static void MlaDecodeCheck(KernelCheckContext ctx, bool bf16, int[] lens, int maxLen, int heads, int dLatent,
        int dRope, int splitTokens, double tol, double qBf16Tol = 0)
    {
        if (ctx.K is not CudaKernels cuda) return;
        int batch = lens.Length, Dq = dLatent + dRope;
        var q = ctx.Rand((long)batch * heads * Dq);
        var cache = ctx.Rand((long)batch * maxLen * Dq);
        var bits = new ushort[cache.Length];
        if (bf16)
            for (long i = 0; i < cache.Length; i++)
            {
                bits[i] = ReferenceKernels.ToBFloat16(cache[i]);
                cache[i] = BitConverter.UInt32BitsToSingle((uint)bits[i] << 16);
            }
        float scale = 3f / MathF.Sqrt(Dq);
        float* o = ctx.Garbage<float>((long)batch * heads * dLatent), lse = ctx.Garbage<float>((long)batch * heads);
        void* dCache = bf16 ? ctx.Up(bits) : ctx.Up(cache);
        cuda.MlaDecode(ctx.Up(q), dCache, bf16, ctx.Up(lens), o, lse, batch, heads, maxLen, dLatent, dRope, scale, splitTokens);

        var (oRef, lseRef) = MlaReference(ctx, q, cache, lens, maxLen, heads, dLatent, Dq, scale);
        var oGot = ctx.Down(o, oRef.Length);
        var lseGot = ctx.Down(lse, lseRef.Length);
        ctx.Close(oGot, oRef, tol, "o");
        ctx.Close(lseGot, lseRef, Math.Min(tol, 1e-3), "lse");
        if (qBf16Tol > 0)
        {
            // The tensor-core kernel rounds q to bf16: against the reference on the rounded q too, only the
            // bf16 rounding of the probabilities is left, so this bound is tight and catches small slips
            // (a missed rescale, a token off by one) that the bound above could hide.
            var qr = new float[q.Length];
            for (long i = 0; i < q.Length; i++) qr[i] = BitConverter.UInt32BitsToSingle((uint)ReferenceKernels.ToBFloat16(q[i]) << 16);
            var (oRef2, lseRef2) = MlaReference(ctx, qr, cache, lens, maxLen, heads, dLatent, Dq, scale);
            ctx.Close(oGot, oRef2, qBf16Tol, "o against bf16-rounded q");
            ctx.Close(lseGot, lseRef2, qBf16Tol, "lse against bf16-rounded q");
        }
    }

    /// <summary>The expected MLA decode: per sequence, the reference attention of Tq = heads queries (non-causal).</summary>
    private static (float[] O, float[] Lse) MlaReference(KernelCheckContext ctx, float[] q, float[] cache, int[] lens, int maxLen,
        int heads, int dLatent, int Dq, float scale)
    {
        int batch = lens.Length;
        var oRef = new float[(long)batch * heads * dLatent];
        var lseRef = new float[(long)batch * heads];
        for (int b = 0; b < batch; b++)
        {
            int len = lens[b];
            var vRows = new float[(long)len * dLatent];
            for (int t = 0; t < len; t++)
                Array.Copy(cache, ((long)b * maxLen + t) * Dq, vRows, (long)t * dLatent, dLatent);
            fixed (float* pq = q, pc = cache, pv = vRows, po = oRef, pl = lseRef)
                ctx.Ref.AttentionForward(pq + (long)b * heads * Dq, pc + (long)b * maxLen * Dq, pv,
                    po + (long)b * heads * dLatent, pl + (long)b * heads, 1, heads, len, Dq, dLatent, scale, false, 1);
        }
        return (oRef, lseRef);
    }
}
