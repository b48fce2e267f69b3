// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
namespace NativeReasoner.Kernels.Verification;

/// <summary>
/// <see cref="IGqaDecodeAttention"/> (batched decode against per-sequence K/V caches) against the reference
/// attention run per sequence on the cache rows in use (Tq = 1 per query head, kvGroup = Hq / Hkv). Cache rows
/// past a sequence's length hold NaN, so reading one fails the check. A backend without the capability (every
/// backend has its own kernel today) runs the checks through the host fallback and its results say so.
/// </summary>
public static unsafe partial class KernelChecks
{
    static partial void AddGqaDecode(List<KernelCheck> list)
    {
        (string Tag, int[] Lengths, int Hq, int Hkv, int Capacity, int Dk, int Dv)[] cases =
        [
            ("b3-hq8-hkv2-cap70-lens1,37,70", [1, 37, 70], 8, 2, 70, 24, 16),
            ("b2-hq7-hkv1-cap20-lens13,0", [13, 0], 7, 1, 20, 16, 16),       // MQA; an empty sequence
            ("b2-hq3-hkv3-cap131-lens130,65", [130, 65], 3, 3, 131, 16, 12), // kvGroup 1, several key tiles
            ("b1-hq6-hkv2-cap41-lens41-d96x64", [41], 6, 2, 41, 96, 64),
            ("b2-hq70-hkv1-cap9-lens9,5", [9, 5], 70, 1, 9, 8, 8),           // a group larger than a 64-row tile
        ];
        foreach (var (tag, lens, hq, hkv, cap, dk, dv) in cases)
            list.Add(new KernelCheck($"attention/gqa-decode/{tag}",
                ctx => GqaDecodeCheck(ctx, lens, hq, hkv, cap, dk, dv)));

        list.Add(new KernelCheck("attention/gqa-decode/bad-arguments", ctx =>
        {
            var decode = ctx.GqaDecode();
            float* x = ctx.Up(ctx.Rand(256)), o = ctx.Garbage<float>(64), l = ctx.Garbage<float>(16);
            foreach (var (lens, hq, hkv, what) in new (int[], int, int, string)[]
                     {
                         ([3, 5], 4, 2, "length 5 past the capacity 4"),
                         ([-1, 2], 4, 2, "a negative length"),
                         ([1, 1], 6, 4, "Hq 6 with Hkv 4"),
                         ([1, 1], 4, 0, "Hkv 0"),
                     })
            {
                bool threw = false;
                try
                {
                    fixed (int* pl = lens) decode.GqaDecodeAttention(x, x, x, pl, o, l, 2, hq, hkv, 4, 4, 4, 1f);
                }
                catch (ArgumentException) { threw = true; }
                ctx.Require(threw, $"{what} did not throw ArgumentException");
            }
        }));
    }

    private static void GqaDecodeCheck(KernelCheckContext ctx, int[] lens, int Hq, int Hkv, int capacity, int Dk,
        int Dv)
    {
        var decode = ctx.GqaDecode();
        int batch = lens.Length, group = Hq / Hkv;
        var q = ctx.Rand((long)batch * Hq * Dk);
        var kCache = ctx.Rand((long)batch * Hkv * capacity * Dk);
        var vCache = ctx.Rand((long)batch * Hkv * capacity * Dv);
        // Rows past each length are unused: NaN there makes any read of them visible.
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < Hkv; h++)
                for (int t = lens[b]; t < capacity; t++)
                {
                    long row = ((long)b * Hkv + h) * capacity + t;
                    Array.Fill(kCache, float.NaN, (int)(row * Dk), Dk);
                    Array.Fill(vCache, float.NaN, (int)(row * Dv), Dv);
                }
        float scale = 2f / MathF.Sqrt(Dk);
        float* o = ctx.Garbage<float>((long)batch * Hq * Dv), lse = ctx.Garbage<float>((long)batch * Hq);
        fixed (int* pl = lens)
            decode.GqaDecodeAttention(ctx.Up(q), ctx.Up(kCache), ctx.Up(vCache), pl, o, lse, batch, Hq, Hkv, capacity,
                Dk, Dv, scale);

        // Expected: per sequence, attention of Hq single queries over the used rows [Hkv, len, D] of its cache.
        var oRef = new float[(long)batch * Hq * Dv];
        var lseRef = new float[(long)batch * Hq];
        for (int b = 0; b < batch; b++)
        {
            int len = lens[b];
            var k = new float[(long)Hkv * len * Dk];
            var v = new float[(long)Hkv * len * Dv];
            for (int h = 0; h < Hkv; h++)
            {
                long row = ((long)b * Hkv + h) * capacity;
                Array.Copy(kCache, row * Dk, k, (long)h * len * Dk, (long)len * Dk);
                Array.Copy(vCache, row * Dv, v, (long)h * len * Dv, (long)len * Dv);
            }
            fixed (float* pq = q, pk = k, pv = v, po = oRef, pls = lseRef)
                ctx.Ref.AttentionForward(pq + (long)b * Hq * Dk, pk, pv, po + (long)b * Hq * Dv, pls + (long)b * Hq,
                    Hq, 1, len, Dk, Dv, scale, false, group);
        }
        ctx.Close(ctx.Down(o, oRef.Length), oRef, 1e-5, "o");
        ctx.Close(ctx.Down(lse, lseRef.Length), lseRef, 1e-5, "lse");
    }
}
