namespace NativeReasoner.Kernels.Verification;

/// <summary>
/// Grouped-query attention (kvGroup query heads per K/V head; MQA when a single K/V head serves all) forward
/// and backward. The oracle is independent of the head mapping under test: the reference's multi-head attention
/// (kvGroup = 1) on K/V repeated per query head in HF's repeat_kv order, with dk/dv of the repeated heads summed
/// back over each group. Group sizes 1, 2, 3, 7; odd lengths; decode (Tq = 1) and cached prefixes (Tq &lt; Tk);
/// queries that see no key (causal, Tq &gt; Tk); more than one tile each way; Dk ≠ Dv.
/// </summary>
public static unsafe partial class KernelChecks
{
    static partial void AddAttentionGqa(List<KernelCheck> list)
    {
        (int B, int Hkv, int Group, int Tq, int Tk, int Dk, int Dv)[] shapes =
        [
            (1, 2, 1, 13, 13, 16, 16),   // kvGroup 1 through the same checks
            (2, 2, 2, 9, 9, 24, 16),
            (2, 1, 3, 7, 7, 16, 16),     // MQA
            (1, 1, 7, 5, 37, 24, 16),    // MQA, cached prefix
            (1, 3, 2, 1, 37, 48, 32),    // decode: one query per head against the whole cache
            (2, 1, 7, 1, 20, 16, 16),    // MQA decode
            (2, 1, 2, 65, 65, 24, 16),   // more than one 64-row tile (the CPU backend's)
            (1, 2, 3, 33, 70, 96, 64),   // several 32-row tiles (CUDA, ILGPU), the ≤ 128-column kernels
            (2, 1, 3, 9, 4, 16, 16),     // causal: the first 5 queries of every head see no key
        ];
        foreach (var (b, hkv, group, tq, tk, dk, dv) in shapes)
            foreach (bool causal in new[] { false, true })
            {
                string tag = $"b{b}-hkv{hkv}-g{group}-q{tq}-k{tk}-d{dk}x{dv}{(causal ? "-causal" : "")}";
                list.Add(new KernelCheck($"attention/gqa/forward/{tag}",
                    ctx => GqaForwardCheck(ctx, b, hkv, group, tq, tk, dk, dv, causal)));
                list.Add(new KernelCheck($"attention/gqa/backward/{tag}",
                    ctx => GqaBackwardCheck(ctx, b, hkv, group, tq, tk, dk, dv, causal)));
            }

        // dk/dv sum over the group in a fixed order: two runs agree bit for bit.
        list.Add(new KernelCheck("attention/gqa/backward/deterministic/b2-hkv2-g3-q37-k37-d24x16-causal", ctx =>
        {
            var (dq1, dk1, dv1) = GqaBackwardRun(ctx, 2, 2, 3, 37, 37, 24, 16, true, seed: 11);
            var (dq2, dk2, dv2) = GqaBackwardRun(ctx, 2, 2, 3, 37, 37, 24, 16, true, seed: 11);
            ctx.Exact<float>(dq2, dq1, "dq of the second run");
            ctx.Exact<float>(dk2, dk1, "dk of the second run");
            ctx.Exact<float>(dv2, dv1, "dv of the second run");
        }));

        // A query-row count that is not a multiple of kvGroup, and kvGroup 0, are refused with ArgumentException.
        list.Add(new KernelCheck("attention/gqa/bad-group", ctx =>
        {
            float* x = ctx.Up(ctx.Rand(64)), o = ctx.Garbage<float>(64), l = ctx.Garbage<float>(8);
            foreach (var (bh, group) in new[] { (5, 2), (4, 0), (3, -1) })
            {
                bool fwd = Throws(() => ctx.K.AttentionForward(x, x, x, o, l, bh, 1, 1, 4, 4, 1f, false, group));
                bool bwd = Throws(() => ctx.K.AttentionBackward(x, x, x, o, l, x, o, o, o, bh, 1, 1, 4, 4, 1f, false,
                    group));
                ctx.Require(fwd, $"forward with BH {bh}, kvGroup {group} did not throw ArgumentException");
                ctx.Require(bwd, $"backward with BH {bh}, kvGroup {group} did not throw ArgumentException");
            }
        }));
    }

    private static bool Throws(Action a)
    {
        try { a(); }
        catch (ArgumentException) { return true; }
        return false;
    }

    /// <summary>x: [B·Hkv, T, D] → [B·Hkv·group, T, D], each K/V head repeated group times (repeat_kv).</summary>
    private static float[] RepeatKv(float[] x, int kvRows, int group, long rowFloats)
    {
        var y = new float[x.Length * group];
        for (long kvh = 0; kvh < kvRows; kvh++)
            for (int g = 0; g < group; g++)
                Array.Copy(x, kvh * rowFloats, y, (kvh * group + g) * rowFloats, rowFloats);
        return y;
    }

    /// <summary>The gradient of the repeated heads summed back per group: [B·Hkv·group, T, D] → [B·Hkv, T, D].</summary>
    private static float[] SumGroups(float[] y, int kvRows, int group, long rowFloats)
    {
        var x = new float[y.Length / group];
        for (long kvh = 0; kvh < kvRows; kvh++)
            for (long e = 0; e < rowFloats; e++)
            {
                double s = 0;
                for (int g = 0; g < group; g++) s += y[(kvh * group + g) * rowFloats + e];
                x[kvh * rowFloats + e] = (float)s;
            }
        return x;
    }

    private static void GqaForwardCheck(KernelCheckContext ctx, int B, int Hkv, int group, int Tq, int Tk, int Dk,
        int Dv, bool causal)
    {
        int kvRows = B * Hkv, BH = kvRows * group;
        var q = ctx.Rand((long)BH * Tq * Dk);
        var k = ctx.Rand((long)kvRows * Tk * Dk);
        var v = ctx.Rand((long)kvRows * Tk * Dv);
        float scale = 2f / MathF.Sqrt(Dk); // peaky enough that the running max moves between key tiles
        float* o = ctx.Garbage<float>((long)BH * Tq * Dv), lse = ctx.Garbage<float>((long)BH * Tq);
        ctx.K.AttentionForward(ctx.Up(q), ctx.Up(k), ctx.Up(v), o, lse, BH, Tq, Tk, Dk, Dv, scale, causal, group);

        var kRep = RepeatKv(k, kvRows, group, (long)Tk * Dk);
        var vRep = RepeatKv(v, kvRows, group, (long)Tk * Dv);
        var oRef = new float[(long)BH * Tq * Dv];
        var lseRef = new float[(long)BH * Tq];
        fixed (float* pq = q, pk = kRep, pv = vRep, po = oRef, pl = lseRef)
            ctx.Ref.AttentionForward(pq, pk, pv, po, pl, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        ctx.Close(ctx.Down(o, oRef.Length), oRef, 1e-5, "o");
        ctx.Close(ctx.Down(lse, lseRef.Length), lseRef, 1e-5, "lse");
    }

    private static void GqaBackwardCheck(KernelCheckContext ctx, int B, int Hkv, int group, int Tq, int Tk, int Dk,
        int Dv, bool causal)
    {
        int kvRows = B * Hkv, BH = kvRows * group;
        var q = ctx.Rand((long)BH * Tq * Dk);
        var k = ctx.Rand((long)kvRows * Tk * Dk);
        var v = ctx.Rand((long)kvRows * Tk * Dv);
        var dO = ctx.Rand((long)BH * Tq * Dv);
        float scale = 2f / MathF.Sqrt(Dk);
        var kRep = RepeatKv(k, kvRows, group, (long)Tk * Dk);
        var vRep = RepeatKv(v, kvRows, group, (long)Tk * Dv);
        // o and lse of the forward from the reference, so this checks the backward alone.
        var o = new float[(long)BH * Tq * Dv];
        var lse = new float[(long)BH * Tq];
        var dqRef = new float[q.Length];
        var dkRep = new float[kRep.Length];
        var dvRep = new float[vRep.Length];
        fixed (float* pq = q, pk = kRep, pv = vRep, po = o, pl = lse, pg = dO, rq = dqRef, rk = dkRep, rv = dvRep)
        {
            ctx.Ref.AttentionForward(pq, pk, pv, po, pl, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
            ctx.Ref.AttentionBackward(pq, pk, pv, po, pl, pg, rq, rk, rv, BH, Tq, Tk, Dk, Dv, scale, causal, 1);
        }
        var dkRef = SumGroups(dkRep, kvRows, group, (long)Tk * Dk);
        var dvRef = SumGroups(dvRep, kvRows, group, (long)Tk * Dv);
        float* dq = ctx.Garbage<float>(q.Length), dk = ctx.Garbage<float>(k.Length), dv = ctx.Garbage<float>(v.Length);
        ctx.K.AttentionBackward(ctx.Up(q), ctx.Up(k), ctx.Up(v), ctx.Up(o), ctx.Up(lse), ctx.Up(dO), dq, dk, dv,
            BH, Tq, Tk, Dk, Dv, scale, causal, group);
        ctx.Close(ctx.Down(dq, q.Length), dqRef, 1e-5, "dq");
        ctx.Close(ctx.Down(dk, k.Length), dkRef, 1e-5, "dk");
        ctx.Close(ctx.Down(dv, v.Length), dvRef, 1e-5, "dv");
    }

    /// <summary>One backward run on inputs drawn from a fixed seed (so two calls see the same inputs).</summary>
    private static (float[] Dq, float[] Dk, float[] Dv) GqaBackwardRun(KernelCheckContext ctx, int B, int Hkv,
        int group, int Tq, int Tk, int Dk, int Dv, bool causal, int seed)
    {
        int kvRows = B * Hkv, BH = kvRows * group;
        var rng = new Random(seed);
        float[] R(long n)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = (float)(2 * rng.NextDouble() - 1);
            return a;
        }
        var q = R((long)BH * Tq * Dk);
        var k = R((long)kvRows * Tk * Dk);
        var v = R((long)kvRows * Tk * Dv);
        var dO = R((long)BH * Tq * Dv);
        float scale = 1f / MathF.Sqrt(Dk);
        float* pq = ctx.Up(q), pk = ctx.Up(k), pv = ctx.Up(v);
        float* o = ctx.Garbage<float>((long)BH * Tq * Dv), lse = ctx.Garbage<float>((long)BH * Tq);
        ctx.K.AttentionForward(pq, pk, pv, o, lse, BH, Tq, Tk, Dk, Dv, scale, causal, group);
        float* dq = ctx.Garbage<float>(q.Length), dk = ctx.Garbage<float>(k.Length), dv = ctx.Garbage<float>(v.Length);
        ctx.K.AttentionBackward(pq, pk, pv, o, lse, ctx.Up(dO), dq, dk, dv, BH, Tq, Tk, Dk, Dv, scale, causal, group);
        return (ctx.Down(dq, q.Length), ctx.Down(dk, k.Length), ctx.Down(dv, v.Length));
    }
}
