// Source: GQA (arXiv:2305.13245) decode against HF cache_utils.py's [B, Hkv, T, D] cache; DeepSeek-V2 MLA
//         (arXiv:2405.04434 §2.1) absorbed decode on the compressed cache, as official DeepSeek-V3 inference/model.py.
using NativeReasoner.Kernels;

namespace NativeReasoner;

// One-token decode steps on the device's own decode kernels (inference only, never recorded). The caches hold every
// sequence slot of a server; the step runs only some of them (rows). The kernels take one cache base and one length
// per slot, so the queries are scattered into a [slots, …] buffer whose idle slots do no work (GQA: length 0) or
// read one token that nobody looks at (MLA: length 1), and the outputs of the running rows are gathered back: no
// cache row is ever copied.
public static unsafe partial class Functional
{
    /// <summary>
    /// True when cached decode on <paramref name="device"/> should take its grouped-query decode kernel: CUDA and
    /// ILGPU have one of their own (the host backends keep the general attention path).
    /// </summary>
    public static bool HasGqaDecodeKernel(Device device) =>
        device.Type is DeviceType.Cuda or DeviceType.Ilgpu && device.Kernels is IGqaDecodeAttention;

    /// <summary>True when <paramref name="device"/> has an MLA decode kernel for these widths (CUDA).</summary>
    public static bool HasMlaDecodeKernel(Device device, int dLatent, int dRope) =>
        device.Kernels is IMlaDecodeAttention m && m.SupportsMlaDecode(dLatent, dRope);

    /// <summary>
    /// One decode step of grouped-query attention on the device's kernel. q: [n, Hq, D] (the new query of each
    /// running sequence); kCache, vCache: [slots, Hkv, capacity, D] (contiguous, keys already rotated, the new
    /// token's own K/V already written); rows[i]: the slot of q row i; lengths[i]: the positions it attends to
    /// (1 … capacity). Returns o: [n, Hq, D].
    /// </summary>
    public static Tensor GqaDecodeAttention(Tensor q, Tensor kCache, Tensor vCache, ReadOnlySpan<int> rows,
        ReadOnlySpan<int> lengths, float scale)
    {
        const string op = "gqa_decode_attention";
        RequireFloatOn(q, q, op, "q");
        RequireFloatOn(kCache, q, op, "kCache");
        RequireFloatOn(vCache, q, op, "vCache");
        if (q.Device.Kernels is not IGqaDecodeAttention decode)
            throw new NotSupportedException($"{op}: device {q.Device} has no grouped-query decode kernel");
        if (q.Rank != 3 || kCache.Rank != 4 || !kCache.Shape.SequenceEqual(vCache.Shape)
            || kCache.Shape[3] != q.Shape[2] || !kCache.IsContiguous || !vCache.IsContiguous)
            throw new ArgumentException(
                $"{op}: expected q [n, Hq, D] and contiguous caches [slots, Hkv, capacity, D] of the same shape, got " +
                $"q {Tensor.FormatShape(q.Shape)}, k {Tensor.FormatShape(kCache.Shape)}, " +
                $"v {Tensor.FormatShape(vCache.Shape)}");
        int n = q.Shape[0], hq = q.Shape[1], d = q.Shape[2];
        int slots = kCache.Shape[0], hkv = kCache.Shape[1], capacity = kCache.Shape[2];
        var slotLengths = ScatterLengths(op, rows, lengths, n, slots, capacity, idle: 0);
        using var noGrad = Tensor.NoGrad();
        using var qSlots = ScatterRows(q, rows, slots);                          // [slots, Hq, D]
        var o = Tensor.Empty([slots, hq, d], DType.Float32, q.Device);          // [slots, Hq, D]
        using var lse = Tensor.Empty([slots, hq], DType.Float32, q.Device);
        fixed (int* pl = slotLengths)
            decode.GqaDecodeAttention(qSlots.Data, kCache.Data, vCache.Data, pl, o.Data, lse.Data, slots, hq, hkv,
                capacity, d, d, scale);
        return GatherRows(o, rows, slots);
    }

    /// <summary>
    /// One decode step of absorbed multi-head latent attention on the device's kernel. q: [n, H, dLatent + dRope]
    /// (q_nope·W_UK, then the rotated q_pe); cache: [slots, capacity, dLatent + dRope] (contiguous, the new token
    /// already written); rows[i]: the slot of q row i; lengths[i]: the positions it attends to (1 … capacity).
    /// Returns the attention over the latents, [n, H, dLatent] (W_UV is applied by the caller).
    /// </summary>
    public static Tensor MlaDecodeAttention(Tensor q, Tensor cache, ReadOnlySpan<int> rows, ReadOnlySpan<int> lengths,
        int dLatent, float scale)
    {
        const string op = "mla_decode_attention";
        RequireFloatOn(q, q, op, "q");
        RequireFloatOn(cache, q, op, "cache");
        if (q.Rank != 3 || cache.Rank != 3 || cache.Shape[2] != q.Shape[2] || !cache.IsContiguous
            || dLatent <= 0 || dLatent > q.Shape[2])
            throw new ArgumentException(
                $"{op}: expected q [n, H, c + r], a contiguous cache [slots, capacity, c + r] and 0 < c ≤ c + r, got " +
                $"q {Tensor.FormatShape(q.Shape)}, cache {Tensor.FormatShape(cache.Shape)}, c = {dLatent}");
        int n = q.Shape[0], heads = q.Shape[1], width = q.Shape[2];
        int slots = cache.Shape[0], capacity = cache.Shape[1];
        if (q.Device.Kernels is not IMlaDecodeAttention mla || !mla.SupportsMlaDecode(dLatent, width - dLatent))
            throw new NotSupportedException($"{op}: device {q.Device} has no MLA decode kernel for c = {dLatent}, " +
                                            $"r = {width - dLatent}");
        var slotLengths = ScatterLengths(op, rows, lengths, n, slots, capacity, idle: 1);
        using var noGrad = Tensor.NoGrad();
        using var qSlots = ScatterRows(q, rows, slots);                          // [slots, H, c + r]
        var o = Tensor.Empty([slots, heads, dLatent], DType.Float32, q.Device);  // [slots, H, c]
        using var lse = Tensor.Empty([slots, heads], DType.Float32, q.Device);
        fixed (int* pl = slotLengths)
            mla.MlaDecodeAttention(qSlots.Data, cache.Data, pl, o.Data, lse.Data, slots, heads, capacity, dLatent,
                width - dLatent, scale);
        return GatherRows(o, rows, slots);
    }

    /// <summary>The length of every slot: lengths[i] for slot rows[i], <paramref name="idle"/> elsewhere.</summary>
    private static int[] ScatterLengths(string op, ReadOnlySpan<int> rows, ReadOnlySpan<int> lengths, int n, int slots,
        int capacity, int idle)
    {
        if (rows.Length != n || lengths.Length != n)
            throw new ArgumentException($"{op}: one slot and one length per query row expected ({n}), got " +
                                        $"{rows.Length} slots and {lengths.Length} lengths");
        var all = new int[slots];
        Array.Fill(all, idle);
        var taken = new bool[slots];
        for (int i = 0; i < n; i++)
        {
            if (rows[i] < 0 || rows[i] >= slots || taken[rows[i]])
                throw new ArgumentException($"{op}: slot {rows[i]} of query row {i} is outside 0..{slots - 1} or " +
                                            "listed twice");
            if (lengths[i] < 1 || lengths[i] > capacity)
                throw new ArgumentException($"{op}: length {lengths[i]} of query row {i} is outside 1..{capacity} " +
                                            "(the cache capacity)");
            taken[rows[i]] = true;
            all[rows[i]] = lengths[i];
        }
        return all;
    }

    /// <summary>x: [n, …] → [slots, …] with row i at slot rows[i] and zeros elsewhere (a contiguous copy).</summary>
    private static Tensor ScatterRows(Tensor x, ReadOnlySpan<int> rows, int slots)
    {
        if (x.Shape[0] == slots && IsIdentity(rows)) return x.ContiguousCopyNoGrad();
        var shape = x.Shape.ToArray();
        shape[0] = slots;
        var all = Tensor.Zeros(shape, DType.Float32, x.Device);
        for (int i = 0; i < rows.Length; i++)
        {
            using var dst = all.Narrow(0, rows[i], 1);
            using var src = x.Narrow(0, i, 1);
            dst.CopyFrom_(src);
        }
        return all;
    }

    /// <summary>y: [slots, …] → [n, …], row i from slot rows[i]; disposes y unless it is returned as is.</summary>
    private static Tensor GatherRows(Tensor y, ReadOnlySpan<int> rows, int slots)
    {
        if (rows.Length == slots && IsIdentity(rows)) return y;
        using (y)
        {
            var shape = y.Shape.ToArray();
            shape[0] = rows.Length;
            var picked = Tensor.Empty(shape, DType.Float32, y.Device);
            for (int i = 0; i < rows.Length; i++)
            {
                using var dst = picked.Narrow(0, i, 1);
                using var src = y.Narrow(0, rows[i], 1);
                dst.CopyFrom_(src);
            }
            return picked;
        }
    }

    private static bool IsIdentity(ReadOnlySpan<int> rows)
    {
        for (int i = 0; i < rows.Length; i++)
            if (rows[i] != i) return false;
        return true;
    }
}
