// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
namespace NativeReasoner.Kernels.Verification;

// Checks of the MoE family (router, permutation, dispatch / combine, weight gradient), the index ops
// (index_select / index_add / gather / scatter_add) and top-k. Selections (router ids, permutations, top-k
// ids and values, index copies) must match the reference exactly; NaN, infinities, signed zeros and exact ties
// are planted on purpose, because the tie and NaN rules are the part a fast kernel gets wrong.
public static unsafe partial class KernelChecks
{
    static partial void AddMoe(List<KernelCheck> list)
    {
        AddMoeRoute(list);
        AddMoePermute(list);
        AddMoeRows(list);
        AddIndexing(list);
        AddTopK(list);
    }

    /// <summary>How a check's scores are drawn.</summary>
    private enum MoeValues
    {
        /// <summary>Uniform in [0, 1): no ties in practice.</summary>
        Random,
        /// <summary>Four levels and both zeros: many exact ties.</summary>
        Ties,
        /// <summary>Ties plus NaN and ±∞ (NaN group scores come from +∞ + −∞).</summary>
        Special,
        /// <summary>Mostly NaN with a few numbers: the k-th best so far is NaN for long stretches.</summary>
        MostlyNaN,
    }

    private static float[] MoeScores(KernelCheckContext ctx, long n, MoeValues kind)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++)
        {
            switch (kind)
            {
                case MoeValues.Random:
                    a[i] = (float)ctx.Rng.NextDouble();
                    break;
                case MoeValues.Ties:
                    int level = ctx.Rng.Next(5);
                    a[i] = level == 4 ? -0f : level * 0.25f;
                    break;
                case MoeValues.MostlyNaN:
                    a[i] = ctx.Rng.Next(8) == 0 ? (ctx.Rng.Next(4) - 1) * 0.25f : float.NaN;
                    break;
                default:
                    int r = ctx.Rng.Next(20);
                    a[i] = r switch
                    {
                        0 or 1 => float.NaN,
                        2 => float.PositiveInfinity,
                        3 => float.NegativeInfinity,
                        4 => -0f,
                        _ => (r % 4) * 0.25f,
                    };
                    break;
            }
        }
        return a;
    }

    // ---------------------------------------------------------------- router

    private static void AddMoeRoute(List<KernelCheck> list)
    {
        // (E, groups, topkGroups, k, n, useBias, normalize, scale, values)
        var cases = new (int E, int G, int Tg, int K, int N, bool Bias, bool Norm, float Scale, MoeValues V)[]
        {
            (8, 1, 1, 1, 1, false, false, 1f, MoeValues.Random),
            (8, 1, 1, 2, 7, true, true, 1f, MoeValues.Random),
            (8, 1, 1, 8, 7, false, true, 2.5f, MoeValues.Ties),
            (8, 8, 3, 2, 7, true, true, 1f, MoeValues.Ties),        // one expert a group: top-2 sums are −∞
            (16, 8, 1, 2, 7, true, true, 1f, MoeValues.Random),
            (16, 8, 2, 8, 7, true, true, 1f, MoeValues.Ties),       // k > kept experts: masked ones (−∞) next
            (16, 8, 8, 8, 129, false, false, 1f, MoeValues.Special),
            (40, 8, 3, 5, 129, true, true, 2.5f, MoeValues.Random), // E not a multiple of 32
            (64, 8, 1, 8, 129, true, true, 1f, MoeValues.Ties),     // k = the one kept group
            (64, 8, 4, 8, 129, false, true, 1f, MoeValues.Special),
            (64, 1, 1, 1, 129, true, false, 1f, MoeValues.Special),
            (128, 64, 5, 4, 7, true, true, 1f, MoeValues.Ties),     // more groups than lanes
            (256, 8, 4, 8, 129, true, true, 2.5f, MoeValues.Random),// DeepSeek-V3
            (256, 8, 4, 8, 129, true, true, 2.5f, MoeValues.Ties),
            (256, 8, 4, 8, 7, true, true, 2.5f, MoeValues.Special),
            (256, 8, 8, 8, 7, false, true, 1f, MoeValues.Ties),
            (256, 1, 1, 8, 7, false, false, 1f, MoeValues.Random),
            (256, 8, 2, 1, 1, true, true, 1f, MoeValues.Random),
            (64, 8, 5, 8, 7, true, true, 1f, MoeValues.Ties),       // with the cases above: topkGroups 1..8
            (64, 8, 6, 8, 7, true, true, 1f, MoeValues.Ties),
            (64, 8, 7, 8, 7, true, true, 1f, MoeValues.Ties),
            (64, 8, 2, 8, 7, true, true, 1f, MoeValues.Ties),
            (8, 8, 3, 2, 129, true, true, 1f, MoeValues.Special),   // +∞ + (−∞): NaN group scores
            (16, 8, 3, 4, 129, true, true, 1f, MoeValues.Special),
            (64, 8, 8, 64, 7, true, true, 1f, MoeValues.Ties),      // k = E: every expert ranked
            (256, 8, 4, 8, 33, true, true, 1f, MoeValues.MostlyNaN),// fewer than k numbers: NaN k-th, numbers late
            (64, 1, 1, 8, 33, false, true, 1f, MoeValues.MostlyNaN),
        };
        foreach (var c in cases)
            list.Add(new KernelCheck($"moe/route/e{c.E}-g{c.G}-tg{c.Tg}-k{c.K}-n{c.N}{(c.Bias ? "-bias" : "")}{(c.Norm ? "-norm" : "")}-{c.V.ToString().ToLowerInvariant()}", ctx =>
            {
                var scores = MoeScores(ctx, (long)c.N * c.E, c.V);
                // Bias on a 1/8 grid (ties survive the addition) and small enough to reorder experts.
                var bias = new float[c.E];
                for (int i = 0; i < c.E; i++)
                    bias[i] = c.V == MoeValues.Random ? ctx.Rand(1, -0.1f, 0.1f)[0] : (ctx.Rng.Next(3) - 1) * 0.125f;
                float* ds = ctx.Up(scores), db = ctx.Up(bias);
                float* dsel = ctx.Garbage<float>((long)c.N * c.E), dw = ctx.Garbage<float>((long)c.N * c.K);
                int* di = ctx.Garbage<int>((long)c.N * c.K);
                ctx.K.MoeRoute(ds, c.Bias ? db : null, c.N, c.E, c.G, c.Tg, c.K, c.Bias, dsel, di, dw, c.Norm, c.Scale);
                var sel = new float[c.N * c.E];
                var idx = new int[c.N * c.K];
                var w = new float[c.N * c.K];
                fixed (float* ps = scores, pb = bias, psel = sel, pw = w)
                fixed (int* pi = idx)
                    ctx.Ref.MoeRoute(ps, c.Bias ? pb : null, c.N, c.E, c.G, c.Tg, c.K, c.Bias, psel, pi, pw, c.Norm, c.Scale);
                ctx.Exact<int>(ctx.Down(di, (long)c.N * c.K), idx, "indices");
                // The weights are the reference's float operations in its order: bit-exact in practice.
                ctx.Close(ctx.Down(dw, (long)c.N * c.K), w, 1e-6, "weights");
                ctx.Exact<float>(ctx.Down(dsel, (long)c.N * c.E), sel, "selection");
            }));
    }

    // ---------------------------------------------------------------- permutation

    private static void AddMoePermute(List<KernelCheck> list)
    {
        // (n, k, E, how the ids are drawn)
        var cases = new (int N, int K, int E, string Ids)[]
        {
            (1, 1, 4, "random"),
            (7, 1, 5, "random"),
            (1, 7, 8, "random"),
            (1031, 1, 64, "random"),
            (129, 8, 256, "random"),
            (1031, 1, 256, "one"),      // every slot on one expert
            (1031, 1, 256, "few"),      // three experts used, the rest empty
            (37, 3, 1, "random"),       // a single expert
            (1500, 8, 256, "random"),   // > PermuteFusedSlots: the three-launch path
            (1500, 8, 256, "one"),
            (4099, 3, 40, "few"),
            (0, 8, 16, "random"),       // no slots: offsets all 0
        };
        foreach (var c in cases)
            foreach (bool withPosition in new[] { true, false })
                list.Add(new KernelCheck($"moe/permute/n{c.N}-k{c.K}-e{c.E}-{c.Ids}{(withPosition ? "" : "-noposition")}", ctx =>
                {
                    int slots = c.N * c.K;
                    var ids = new int[slots];
                    int[] few = [0, 3, Math.Min(200, c.E - 1)];
                    for (int s = 0; s < slots; s++)
                        ids[s] = c.Ids switch
                        {
                            "one" => c.E - 1,
                            "few" => few[ctx.Rng.Next(3)],
                            _ => ctx.Rng.Next(c.E),
                        };
                    int* dOff = ctx.Garbage<int>(c.E + 1), dOrder = ctx.Garbage<int>(slots), dPos = withPosition ? ctx.Garbage<int>(slots) : null;
                    ctx.K.MoePermute(ctx.Up(ids), c.N, c.K, c.E, dOff, dOrder, dPos);
                    var off = new int[c.E + 1];
                    var order = new int[slots];
                    var pos = new int[slots];
                    fixed (int* pi = ids, po = off, pr = order, pp = pos)
                        ctx.Ref.MoePermute(pi, c.N, c.K, c.E, po, pr, pp);
                    ctx.Exact<int>(ctx.Down(dOff, c.E + 1), off, "expertOffsets");
                    ctx.Exact<int>(ctx.Down(dOrder, slots), order, "slotOrder");
                    if (withPosition) ctx.Exact<int>(ctx.Down(dPos, slots), pos, "slotPosition");
                }));

        // Ids outside [0, E): the host backends throw; a device backend leaves those slots out.
        list.Add(new KernelCheck("moe/permute/out-of-range", ctx =>
        {
            const int n = 50, k = 4, e = 16;
            var ids = new int[n * k];
            for (int s = 0; s < ids.Length; s++) ids[s] = ctx.Rng.Next(6) == 0 ? (s % 2 == 0 ? -1 - s : e + s) : ctx.Rng.Next(e);
            int* dOff = ctx.Garbage<int>(e + 1), dOrder = ctx.Garbage<int>(n * k), dPos = ctx.Garbage<int>(n * k);
            int* dIds = ctx.Up(ids);
            if (ctx.Memory.IsHost)
            {
                bool threw = false;
                try { ctx.K.MoePermute(dIds, n, k, e, dOff, dOrder, dPos); }
                catch (ArgumentOutOfRangeException) { threw = true; }
                ctx.Require(threw, "a host backend must reject expert ids outside [0, E)");
                return;
            }
            ctx.K.MoePermute(dIds, n, k, e, dOff, dOrder, dPos);
            // Expected: the stable sort of the valid slots alone.
            var valid = Enumerable.Range(0, ids.Length).Where(s => ids[s] >= 0 && ids[s] < e).ToArray();
            var sorted = valid.OrderBy(s => ids[s]).ToArray(); // OrderBy is stable
            var off = new int[e + 1];
            foreach (int s in valid) off[ids[s] + 1]++;
            for (int x = 0; x < e; x++) off[x + 1] += off[x];
            ctx.Exact<int>(ctx.Down(dOff, e + 1), off, "expertOffsets");
            ctx.Exact<int>(ctx.Down(dOrder, sorted.Length), sorted, "slotOrder of the valid slots");
            var pos = ctx.Down(dPos, ids.Length);
            ctx.Exact<int>(sorted.Select(s => pos[s]).ToArray(), Enumerable.Range(0, sorted.Length).ToArray(), "slotPosition of the valid slots");
        }));
    }

    // ---------------------------------------------------------------- dispatch / combine / weight grad

    private static int[] MoeRandomPermutation(KernelCheckContext ctx, int n)
    {
        var p = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--)
        {
            int j = ctx.Rng.Next(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    private static void AddMoeRows(List<KernelCheck> list)
    {
        // d = 4·m takes the float4 path, the others the scalar one; the long rows of few tokens are cut into
        // pieces (a decode step).
        var shapes = new (int N, int K, int D)[]
        {
            (1, 1, 1), (1, 8, 7), (7, 2, 129), (7, 8, 128), (129, 8, 7), (129, 3, 1), (33, 8, 264), (1, 2, 1031), (2, 3, 4100),
        };
        foreach (var (n, k, d) in shapes)
            foreach (bool weighted in new[] { true, false })
            {
                string tag = $"n{n}-k{k}-d{d}{(weighted ? "-weighted" : "")}";
                list.Add(new KernelCheck($"moe/dispatch/{tag}", ctx =>
                {
                    var x = ctx.Rand((long)n * d);
                    var pos = MoeRandomPermutation(ctx, n * k);
                    var w = ctx.Rand((long)n * k, 0f, 1f);
                    float* dy = ctx.Garbage<float>((long)n * k * d);
                    ctx.K.MoeDispatch(ctx.Up(x), ctx.Up(pos), weighted ? ctx.Up(w) : null, n, k, d, dy);
                    var y = new float[n * k * d];
                    fixed (float* px = x, pw = w, py = y)
                    fixed (int* pp = pos)
                        ctx.Ref.MoeDispatch(px, pp, weighted ? pw : null, n, k, d, py);
                    // One multiply per element: exact.
                    ctx.Exact<float>(ctx.Down(dy, (long)n * k * d), y, "y");
                }));
                list.Add(new KernelCheck($"moe/combine/{tag}", ctx =>
                {
                    var src = ctx.Rand((long)n * k * d);
                    var pos = MoeRandomPermutation(ctx, n * k);
                    var w = ctx.Rand((long)n * k, 0f, 1f);
                    float* dy = ctx.Garbage<float>((long)n * d);
                    ctx.K.MoeCombine(ctx.Up(src), ctx.Up(pos), weighted ? ctx.Up(w) : null, n, k, d, dy);
                    var y = new float[n * d];
                    fixed (float* ps = src, pw = w, py = y)
                    fixed (int* pp = pos)
                        ctx.Ref.MoeCombine(ps, pp, weighted ? pw : null, n, k, d, py);
                    // ≤ 8 float (fused) multiply-adds against the reference's double sum: ~1e-7.
                    ctx.Close(ctx.Down(dy, (long)n * d), y, 1e-6, "y");
                }));
                if (!weighted) continue;
                list.Add(new KernelCheck($"moe/weight-grad/n{n}-k{k}-d{d}", ctx =>
                {
                    var dyv = ctx.Rand((long)n * d);
                    var src = ctx.Rand((long)n * k * d);
                    var pos = MoeRandomPermutation(ctx, n * k);
                    float* ddw = ctx.Garbage<float>((long)n * k);
                    ctx.K.MoeCombineWeightGrad(ctx.Up(dyv), ctx.Up(src), ctx.Up(pos), n, k, d, ddw);
                    var dw = new float[n * k];
                    fixed (float* pg = dyv, ps = src, pw = dw)
                    fixed (int* pp = pos)
                        ctx.Ref.MoeCombineWeightGrad(pg, ps, pp, n, k, d, pw);
                    // Float dots of ≤ 264 terms against double ones (relative L2 over all slots).
                    ctx.Close(ctx.Down(ddw, (long)n * k), dw, 1e-5, "dw");
                }));
            }
    }

    // ---------------------------------------------------------------- indexing

    private static long[] MoeIndices(KernelCheckContext ctx, long count, int range)
    {
        // Small ranges relative to the count: many repeats.
        var a = new long[count];
        for (long i = 0; i < count; i++) a[i] = ctx.Rng.Next(range);
        return a;
    }

    private static void AddIndexing(List<KernelCheck> list)
    {
        // [outer, dimIn (indexed), n or dimOut, inner]; inner = 4·m with aligned rows takes index_select's float4 path.
        var shapes = new (int Outer, int DimIn, int N, int Inner)[]
        {
            (1, 1, 1, 1), (1, 5, 9, 1), (3, 7, 4, 5), (2, 129, 200, 33), (5, 17, 31, 128), (1, 1031, 37, 7), (4, 3, 300, 260),
            (1, 50, 3, 2052), (2, 9, 2, 1031),
        };
        foreach (var (outer, dimIn, n, inner) in shapes)
        {
            string tag = $"{outer}x{dimIn}x{inner}-n{n}";
            list.Add(new KernelCheck($"index/select/{tag}", ctx =>
            {
                var x = ctx.Rand((long)outer * dimIn * inner);
                var idx = MoeIndices(ctx, n, dimIn);
                float* dy = ctx.Garbage<float>((long)outer * n * inner);
                ctx.K.IndexSelect(ctx.Up(x), ctx.Up(idx), dy, outer, dimIn, n, inner);
                var y = new float[outer * n * inner];
                fixed (float* px = x, py = y)
                fixed (long* pi = idx)
                    ctx.Ref.IndexSelect(px, pi, py, outer, dimIn, n, inner);
                ctx.Exact<float>(ctx.Down(dy, y.Length), y, "y");
            }));
            list.Add(new KernelCheck($"index/add/{tag}", ctx =>
            {
                var src = ctx.Rand((long)outer * n * inner);
                var idx = MoeIndices(ctx, n, dimIn);
                var dst = ctx.Rand((long)outer * dimIn * inner);
                float* dd = ctx.Up(dst);
                ctx.K.IndexAdd(ctx.Up(src), ctx.Up(idx), dd, outer, n, dimIn, inner);
                fixed (float* ps = src, pd = dst)
                fixed (long* pi = idx)
                    ctx.Ref.IndexAdd(ps, pi, pd, outer, n, dimIn, inner);
                // Float atomics in any order vs the reference's sequential float adds (≤ ~60 terms an element).
                ctx.Close(ctx.Down(dd, dst.Length), dst, 1e-6, "dst");
            }));
            list.Add(new KernelCheck($"index/gather/{tag}", ctx =>
            {
                var x = ctx.Rand((long)outer * dimIn * inner);
                var idx = MoeIndices(ctx, (long)outer * n * inner, dimIn);
                float* dy = ctx.Garbage<float>((long)outer * n * inner);
                ctx.K.Gather(ctx.Up(x), ctx.Up(idx), dy, outer, dimIn, n, inner);
                var y = new float[outer * n * inner];
                fixed (float* px = x, py = y)
                fixed (long* pi = idx)
                    ctx.Ref.Gather(px, pi, py, outer, dimIn, n, inner);
                ctx.Exact<float>(ctx.Down(dy, y.Length), y, "y");
            }));
            list.Add(new KernelCheck($"index/scatter-add/{tag}", ctx =>
            {
                var src = ctx.Rand((long)outer * n * inner);
                var idx = MoeIndices(ctx, (long)outer * n * inner, dimIn);
                var dst = ctx.Rand((long)outer * dimIn * inner);
                float* dd = ctx.Up(dst);
                ctx.K.ScatterAdd(ctx.Up(src), ctx.Up(idx), dd, outer, n, dimIn, inner);
                fixed (float* ps = src, pd = dst)
                fixed (long* pi = idx)
                    ctx.Ref.ScatterAdd(ps, pi, pd, outer, n, dimIn, inner);
                ctx.Close(ctx.Down(dd, dst.Length), dst, 1e-6, "dst");
            }));
        }
    }

    // ---------------------------------------------------------------- top-k

    private static void AddTopK(List<KernelCheck> list)
    {
        // cols ≤ 4096: whole-row sort; longer rows: radix select (k ≤ 2048) or merge sort (k > 2048).
        var cases = new (int Rows, int Cols, int K)[]
        {
            (3, 1, 1), (5, 7, 1), (5, 7, 5), (5, 7, 7), (33, 256, 8), (4, 1031, 1), (4, 1031, 5), (2, 1031, 1031),
            (2, 4097, 5), (2, 40000, 1), (2, 40000, 5), (1, 40000, 2048), (1, 40000, 40000), (2, 5000, 3000), (3, 9, 0),
        };
        foreach (var (rows, cols, k) in cases)
            foreach (var kind in new[] { MoeValues.Random, MoeValues.Special })
            {
                list.Add(new KernelCheck($"topk/{rows}x{cols}-k{k}-{kind.ToString().ToLowerInvariant()}", ctx =>
                {
                    float[] x;
                    if (kind == MoeValues.Random) x = ctx.Rand((long)rows * cols);
                    else
                    {
                        // Ties, zeros of both signs, NaN and infinities; plus a row of one repeated value.
                        x = MoeScores(ctx, (long)rows * cols, MoeValues.Special);
                        if (rows > 1) Array.Fill(x, 0.5f, cols, cols);
                    }
                    float* dv = ctx.Garbage<float>((long)rows * k);
                    long* di = ctx.Garbage<long>((long)rows * k);
                    ctx.K.TopK(ctx.Up(x), dv, di, rows, cols, k);
                    var v = new float[rows * k];
                    var ix = new long[rows * k];
                    fixed (float* px = x, pv = v)
                    fixed (long* pi = ix)
                        ctx.Ref.TopK(px, pv, pi, rows, cols, k);
                    ctx.Exact<long>(ctx.Down(di, (long)rows * k), ix, "indices");
                    ctx.Exact<float>(ctx.Down(dv, (long)rows * k), v, "values");
                }));
            }
    }
}
