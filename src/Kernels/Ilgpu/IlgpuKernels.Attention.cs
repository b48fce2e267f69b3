using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// Tiled attention (FlashAttention-style). A group of Br threads owns Br consecutive query rows of one head
// (one row per thread). Key/value rows are staged Bc at a time in shared memory, and each thread keeps an
// online softmax (running max m, running sum l, rescaled accumulator) in local memory: no Tq×Tk buffer.
// Causal masking is bottom-right aligned: query i sees keys 0..Tk − Tq + i. The backward recomputes the
// probabilities from q, k and the forward's lse: one kernel for dq (thread per query, loop over key tiles),
// one for dk and dv (thread per key, loop over query tiles), so no atomics are needed.
// Grouped K/V heads (GQA, arXiv:2305.13245): query head bh reads K/V head bh / Group in place; the dk/dv kernel
// runs per K/V head and loops over the Group query heads that read it, so their sum needs no atomics either.
public sealed unsafe partial class IlgpuKernels
{
    /// <summary>Largest Dk / Dv the kernels take (per-thread local rows are sized for it).</summary>
    public const int MaxHeadDim = 256;

    /// <summary>Floats per shared tile (Bc rows of up to MaxHeadDim floats).</summary>
    private const int AttnTileFloats = 4096;

    /// <summary>Most rows per staged tile (the per-thread score buffer holds one tile).</summary>
    private const int AttnMaxTileRows = 32;

    internal struct AttnArgs
    {
        public int BH, Tq, Tk, Dk, Dv, Causal, TileRows, Group;
        public float Scale;

        /// <summary>Last key query i may see; negative when it sees none.</summary>
        public readonly int LastKey(int i) => Causal != 0 ? IntrinsicMath.Min(Tk - 1, Tk - Tq + i) : Tk - 1;
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnArgs>? _attnFwd;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnArgs>? _attnDq;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnArgs>? _attnDkDv;

    private int AttnGroup => Math.Min(32, _acc.MaxNumThreadsPerGroup);

    private AttnArgs MakeAttnArgs(string op, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal,
        int kvGroup)
    {
        AttentionHeads.KvRows(op, BH, kvGroup);
        if (Dk > MaxHeadDim || Dv > MaxHeadDim)
            throw new NotSupportedException($"ILGPU attention takes head dims up to {MaxHeadDim}, got Dk={Dk}, Dv={Dv}");
        int rows = Math.Min(AttnMaxTileRows, AttnTileFloats / Math.Max(1, Math.Max(Dk, Dv)));
        return new AttnArgs
        {
            BH = BH, Tq = Tq, Tk = Tk, Dk = Dk, Dv = Dv, Causal = causal ? 1 : 0, TileRows = rows, Scale = scale,
            Group = kvGroup,
        };
    }

    private KernelConfig AttnConfig(long items) => new((int)Math.Max(1, Math.Min(items, _maxRowGroups)), AttnGroup);

    public void AttentionForward(float* q, float* k, float* v, float* o, float* lse,
        int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal, int kvGroup)
    {
        var a = MakeAttnArgs(nameof(AttentionForward), BH, Tq, Tk, Dk, Dv, scale, causal, kvGroup);
        if ((long)BH * Tq == 0) return;
        long items = (long)BH * ((Tq + AttnGroup - 1) / AttnGroup);
        lock (_backend.Sync)
        {
            // Empty K/V (Tk = 0, or zero-width heads): pass o's view; the kernel never reads it then.
            var kv = Tk == 0 || Dk == 0 ? F(o) : F(k);
            var vv = Tk == 0 || Dv == 0 ? F(lse) : F(v);
            var ov = Dv == 0 ? F(lse) : F(o);
            (_attnFwd ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnArgs>(AttnForwardKernel))(
                AttnConfig(items), Dk == 0 ? kv : F(q), kv, vv, ov, F(lse), a);
        }
    }

    /// <summary>
    /// q: [BH, Tq, Dk], k: [BH / Group, Tk, Dk], v: [BH / Group, Tk, Dv] → o: [BH, Tq, Dv], lse: [BH, Tq].
    /// </summary>
    private static void AttnForwardKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> lse, AttnArgs a)
    {
        var Ks = SharedMemory.Allocate<float>(AttnTileFloats);
        var Vs = SharedMemory.Allocate<float>(AttnTileFloats);
        var qi = LocalMemory.Allocate<float>(MaxHeadDim);
        var acc = LocalMemory.Allocate<float>(MaxHeadDim);
        var sc = LocalMemory.Allocate<float>(AttnMaxTileRows);
        int Br = Group.DimX, Bc = a.TileRows;
        int qTiles = (a.Tq + Br - 1) / Br;
        for (int item = Grid.IdxX; item < a.BH * qTiles; item += Grid.DimX)
        {
            int bh = item / qTiles, i0 = (item - bh * qTiles) * Br;
            int i = i0 + Group.IdxX;
            bool active = i < a.Tq;
            int last = active ? a.LastKey(i) : -1;
            // The group's last row sees the most keys (visibility grows with i): the tile loop bound, uniform.
            int groupLast = a.LastKey(IntrinsicMath.Min(a.Tq - 1, i0 + Br - 1));
            long kvh = bh / a.Group;
            long qRow = ((long)bh * a.Tq + i) * a.Dk, kBase = kvh * a.Tk * a.Dk, vBase = kvh * a.Tk * a.Dv;
            if (active)
                for (int d = 0; d < a.Dk; d++) qi[d] = q[qRow + d];
            for (int d = 0; d < a.Dv; d++) acc[d] = 0f;
            float m = float.NegativeInfinity, l = 0f;
            for (int j0 = 0; j0 <= groupLast; j0 += Bc)
            {
                int nk = IntrinsicMath.Min(Bc, a.Tk - j0);
                Group.Barrier(); // the previous tile has been consumed by every thread
                for (int e = Group.IdxX; e < nk * a.Dk; e += Br) Ks[e] = k[kBase + (long)j0 * a.Dk + e];
                for (int e = Group.IdxX; e < nk * a.Dv; e += Br) Vs[e] = v[vBase + (long)j0 * a.Dv + e];
                Group.Barrier();
                if (!active || j0 > last) continue;
                int nv = IntrinsicMath.Min(nk, last - j0 + 1);
                float tileMax = float.NegativeInfinity;
                for (int jj = 0; jj < nv; jj++)
                {
                    float s = 0f;
                    for (int d = 0; d < a.Dk; d++) s += qi[d] * Ks[jj * a.Dk + d];
                    s *= a.Scale;
                    sc[jj] = s;
                    tileMax = DeviceMath.MaxNaN(tileMax, s);
                }
                float mNew = DeviceMath.MaxNaN(m, tileMax);
                float corr = MathF.Exp(m - mNew); // 0 on the first tile (m = −∞)
                l *= corr;
                for (int d = 0; d < a.Dv; d++) acc[d] *= corr;
                for (int jj = 0; jj < nv; jj++)
                {
                    float p = MathF.Exp(sc[jj] - mNew);
                    l += p;
                    for (int d = 0; d < a.Dv; d++) acc[d] += p * Vs[jj * a.Dv + d];
                }
                m = mNew;
            }
            if (active)
            {
                long oRow = ((long)bh * a.Tq + i) * a.Dv;
                // A query that sees no key: o = 0, lse = −∞.
                float inv = last < 0 ? 0f : 1f / l;
                for (int d = 0; d < a.Dv; d++) o[oRow + d] = acc[d] * inv;
                lse[(long)bh * a.Tq + i] = last < 0 ? float.NegativeInfinity : m + MathF.Log(l);
            }
        }
    }

    public void AttentionBackward(float* q, float* k, float* v, float* o, float* lse, float* dO,
        float* dq, float* dk, float* dv, int BH, int Tq, int Tk, int Dk, int Dv, float scale, bool causal,
        int kvGroup)
    {
        var a = MakeAttnArgs(nameof(AttentionBackward), BH, Tq, Tk, Dk, Dv, scale, causal, kvGroup);
        lock (_backend.Sync)
        {
            // Zero-sized operands get any live view in their place: the kernels never index them then.
            ArrayView<float> Any(float* p, long n, ArrayView<float> fallback) => n == 0 ? fallback : F(p);
            long nq = (long)BH * Tq, nk = (long)(BH / kvGroup) * Tk; // query rows, K/V rows
            if (nq == 0 && nk == 0) return;
            var live = nq > 0 ? F(lse) : (nk * Dk > 0 ? F(k) : F(v));
            var qv = Any(q, nq * Dk, live);
            var kv = Any(k, nk * Dk, live);
            var vv = Any(v, nk * Dv, live);
            var ov = Any(o, nq * Dv, live);
            var lv = Any(lse, nq, live);
            var dOv = Any(dO, nq * Dv, live);
            if (nq * Dk > 0)
                (_attnDq ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnArgs>(AttnDqKernel))(
                    AttnConfig((long)BH * ((Tq + AttnGroup - 1) / AttnGroup)), qv, kv, vv, ov, lv, dOv, F(dq), a);
            if (nk * (Dk + Dv) > 0)
                (_attnDkDv ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttnArgs>(AttnDkDvKernel))(
                    AttnConfig((long)(BH / kvGroup) * ((Tk + AttnGroup - 1) / AttnGroup)), qv, kv, vv, ov, lv, dOv,
                    Any(dk, nk * Dk, live), Any(dv, nk * Dv, live), a);
        }
    }

    /// <summary>
    /// dq_i = scale · Σ_j dS_ij k_j with P_ij = exp(scale·q_i·k_j − lse_i), dP_ij = dO_i·v_j,
    /// dS_ij = P_ij (dP_ij − D_i) and D_i = dO_i·o_i (= Σ_j P_ij dP_ij).
    /// </summary>
    private static void AttnDqKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> lse, ArrayView<float> dO, ArrayView<float> dq, AttnArgs a)
    {
        var Ks = SharedMemory.Allocate<float>(AttnTileFloats);
        var Vs = SharedMemory.Allocate<float>(AttnTileFloats);
        var qi = LocalMemory.Allocate<float>(MaxHeadDim);
        var gi = LocalMemory.Allocate<float>(MaxHeadDim);
        var acc = LocalMemory.Allocate<float>(MaxHeadDim);
        int Br = Group.DimX, Bc = a.TileRows;
        int qTiles = (a.Tq + Br - 1) / Br;
        for (int item = Grid.IdxX; item < a.BH * qTiles; item += Grid.DimX)
        {
            int bh = item / qTiles, i0 = (item - bh * qTiles) * Br;
            int i = i0 + Group.IdxX;
            bool active = i < a.Tq;
            int last = active ? a.LastKey(i) : -1;
            int groupLast = a.LastKey(IntrinsicMath.Min(a.Tq - 1, i0 + Br - 1));
            long kvh = bh / a.Group;
            long row = (long)bh * a.Tq + i, kBase = kvh * a.Tk * a.Dk, vBase = kvh * a.Tk * a.Dv;
            float Di = 0f, li = 0f;
            if (active)
            {
                for (int d = 0; d < a.Dk; d++) { qi[d] = q[row * a.Dk + d]; acc[d] = 0f; }
                for (int d = 0; d < a.Dv; d++) { gi[d] = dO[row * a.Dv + d]; Di += gi[d] * o[row * a.Dv + d]; }
                li = lse[row];
            }
            for (int j0 = 0; j0 <= groupLast; j0 += Bc)
            {
                int nk = IntrinsicMath.Min(Bc, a.Tk - j0);
                Group.Barrier();
                for (int e = Group.IdxX; e < nk * a.Dk; e += Br) Ks[e] = k[kBase + (long)j0 * a.Dk + e];
                for (int e = Group.IdxX; e < nk * a.Dv; e += Br) Vs[e] = v[vBase + (long)j0 * a.Dv + e];
                Group.Barrier();
                if (!active || j0 > last) continue;
                int nv = IntrinsicMath.Min(nk, last - j0 + 1);
                for (int jj = 0; jj < nv; jj++)
                {
                    float s = 0f, dp = 0f;
                    for (int d = 0; d < a.Dk; d++) s += qi[d] * Ks[jj * a.Dk + d];
                    for (int d = 0; d < a.Dv; d++) dp += gi[d] * Vs[jj * a.Dv + d];
                    float p = MathF.Exp(s * a.Scale - li);
                    float ds = p * (dp - Di) * a.Scale;
                    for (int d = 0; d < a.Dk; d++) acc[d] += ds * Ks[jj * a.Dk + d];
                }
            }
            if (active)
                for (int d = 0; d < a.Dk; d++) dq[row * a.Dk + d] = acc[d];
        }
    }

    /// <summary>
    /// dv_j = Σ_i P_ij dO_i; dk_j = scale · Σ_i dS_ij q_i over the queries that see key j, of every query head of
    /// the K/V head's group (one thread per key of a K/V head).
    /// </summary>
    private static void AttnDkDvKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> lse, ArrayView<float> dO, ArrayView<float> dk, ArrayView<float> dv, AttnArgs a)
    {
        var Qs = SharedMemory.Allocate<float>(AttnTileFloats);
        var Gs = SharedMemory.Allocate<float>(AttnTileFloats);
        var Ls = SharedMemory.Allocate<float>(AttnMaxTileRows);
        var Ds = SharedMemory.Allocate<float>(AttnMaxTileRows);
        var kj = LocalMemory.Allocate<float>(MaxHeadDim);
        var vj = LocalMemory.Allocate<float>(MaxHeadDim);
        var dkAcc = LocalMemory.Allocate<float>(MaxHeadDim);
        var dvAcc = LocalMemory.Allocate<float>(MaxHeadDim);
        int Bk = Group.DimX, Bq = a.TileRows;
        int kTiles = (a.Tk + Bk - 1) / Bk;
        int shift = a.Tk - a.Tq; // key j is seen by queries i ≥ j − shift (causal)
        int kvRows = a.BH / a.Group;
        for (int item = Grid.IdxX; item < kvRows * kTiles; item += Grid.DimX)
        {
            int kvh = item / kTiles, j0 = (item - kvh * kTiles) * Bk;
            int j = j0 + Group.IdxX;
            bool active = j < a.Tk;
            long krow = (long)kvh * a.Tk + j;
            if (active)
            {
                for (int d = 0; d < a.Dk; d++) { kj[d] = k[krow * a.Dk + d]; dkAcc[d] = 0f; }
                for (int d = 0; d < a.Dv; d++) { vj[d] = v[krow * a.Dv + d]; dvAcc[d] = 0f; }
            }
            // The group's first key is seen by the most queries: start the query loop there (uniform).
            int firstQ = a.Causal != 0 ? IntrinsicMath.Max(0, j0 - shift) : 0;
            for (int bh = kvh * a.Group; bh < (kvh + 1) * a.Group; bh++)
                for (int i0 = firstQ; i0 < a.Tq; i0 += Bq)
                {
                    int nq = IntrinsicMath.Min(Bq, a.Tq - i0);
                    long qBase = (long)bh * a.Tq + i0;
                    Group.Barrier();
                    for (int e = Group.IdxX; e < nq * a.Dk; e += Bk) Qs[e] = q[qBase * a.Dk + e];
                    for (int e = Group.IdxX; e < nq * a.Dv; e += Bk) Gs[e] = dO[qBase * a.Dv + e];
                    for (int r = Group.IdxX; r < nq; r += Bk)
                    {
                        float D = 0f;
                        for (int d = 0; d < a.Dv; d++) D += dO[(qBase + r) * a.Dv + d] * o[(qBase + r) * a.Dv + d];
                        Ds[r] = D;
                        Ls[r] = lse[qBase + r];
                    }
                    Group.Barrier();
                    if (!active) continue;
                    for (int ii = 0; ii < nq; ii++)
                    {
                        if (a.Causal != 0 && j > shift + i0 + ii) continue;
                        float s = 0f, dp = 0f;
                        for (int d = 0; d < a.Dk; d++) s += kj[d] * Qs[ii * a.Dk + d];
                        for (int d = 0; d < a.Dv; d++) dp += vj[d] * Gs[ii * a.Dv + d];
                        float p = MathF.Exp(s * a.Scale - Ls[ii]);
                        float ds = p * (dp - Ds[ii]) * a.Scale;
                        for (int d = 0; d < a.Dv; d++) dvAcc[d] += p * Gs[ii * a.Dv + d];
                        for (int d = 0; d < a.Dk; d++) dkAcc[d] += ds * Qs[ii * a.Dk + d];
                    }
                }
            if (active)
            {
                for (int d = 0; d < a.Dk; d++) dk[krow * a.Dk + d] = dkAcc[d];
                for (int d = 0; d < a.Dv; d++) dv[krow * a.Dv + d] = dvAcc[d];
            }
        }
    }
}
