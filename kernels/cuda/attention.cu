// Source: FlashAttention-2 (arXiv:2307.08691) online softmax with a saved log-sum-exp, on CUDA cores.
// fp32 scaled dot-product attention on CUDA cores (IKernels.AttentionForward / AttentionBackward):
// q: [BH, Tq, Dk], k: [BH / group, Tk, Dk], v: [BH / group, Tk, Dv], o: [BH, Tq, Dv], lse: [BH, Tq]; query
// head bh reads K/V head bh / group (grouped-query attention, arXiv:2305.13245; group = 1 is multi-head
// attention); causal is bottom-right aligned (query i sees keys 0 .. Tk − Tq + i). Head dims up to 256 (the
// accumulators are registers).
//
// Design (FlashAttention-2 on CUDA cores; the bf16 tensor-core flavour is attention_bf16):
// - Forward: a block per (bh, tile of 32 queries), 4 warps × 8 query rows. K/V tiles of 32 keys are staged
//   in shared memory (lane ↔ key for the scores, lane ↔ column for P·V, see attention.cuh); the scores, the
//   running max/sum and the O accumulators stay in registers; under causal the key tiles past the block's
//   last visible key are never loaded. Per 32 keys × 8 rows a warp does 8·Dk/4 broadcast 16-byte loads and
//   Dk/4 per-lane ones for 8·Dk FMAs: shared-memory bandwidth and FMA issue are about even, so the kernel is
//   compute-bound at ~half the fp32 peak; global traffic is (Tq/32)·Tk·(Dk + Dv)·4 bytes per head, mostly L2
//   hits because consecutive blocks are consecutive query tiles of one head. A short query tile (decode,
//   Tq = 1) leaves most of a block's rows idle: the model's decode path is MlaDecode, not this op.
// - Backward, deterministic (no atomics), three launches:
//   1. nr_attention_bwd_dot_f32: D_i = dO_i · O_i (a warp per row).
//   2. nr_attention_bwd_dq_f32: a block per (bh, 32 queries), the forward's layout: recompute
//      s = scale·q·k, p = exp(s − lse), dp = dO·v, ds = p (dp − D) per 32-key tile; dQ += ds · K in registers.
//   3. nr_attention_bwd_dkdv_f32: a block per (K/V head, 32 keys), 8 warps × 4 key rows, lane ↔ query over
//      the query tiles of 32 of every query head of the group (only those that see the block's keys under
//      causal): dV += p · dO, dK += ds · Q in registers, so the group's sum needs no atomics either.
//   The price of determinism is recomputing the scores and dP in both passes (FA2 shares them and adds dQ
//   with atomics); the cost is about 1.4× the atomic version's FLOPs, with no cross-block write contention.
#include "prelude.cuh"
#include "attention.cuh"

// ------------------------------------------------------------------ forward

#define NR_ATTN_FWD_R 8
#define NR_ATTN_FWD_WARPS 4

template <int NC>
static __device__ __forceinline__ void nr_attention_fwd(const float* q, const float* k, const float* v, float* o,
    float* lse, int Tq, int Tk, int Dk, int Dv, float scale, int causal, int qTiles, int group)
{
    const int tile = blockIdx.x % qTiles;
    const long long bh = blockIdx.x / qTiles;
    const long long kvh = bh / group;
    const int i0 = tile * (NR_ATTN_FWD_R * NR_ATTN_FWD_WARPS);
    NrAttnRowsArgs a;
    a.q = q + (bh * Tq + i0) * Dk;
    a.k = k + kvh * Tk * Dk;
    a.v = v + kvh * Tk * Dv;
    a.ldq = Dk;
    a.ldk = Dk;
    a.ldv = Dv;
    a.rows = min(NR_ATTN_FWD_R * NR_ATTN_FWD_WARPS, Tq - i0);
    a.Dk = Dk;
    a.Dv = Dv;
    a.kBeg = 0;
    a.kEnd = Tk;
    a.causal = causal;
    a.lastBase = Tk - Tq + i0;
    a.kvShared = 0;
    a.scale = scale;
    a.o = o + (bh * Tq + i0) * Dv;
    a.ldo = Dv;
    a.lse = lse + bh * Tq + i0;
    nr_attn_rows_forward<NR_ATTN_FWD_R, NR_ATTN_FWD_WARPS, float, NC>(a);
}

// Grid: qTiles · BH blocks (block = tile + qTiles · bh), 128 threads; group: query heads per K/V head;
// NC = max(Dk, Dv) / 32 rounded up to 2, 4, 8.
// (Spelled out, not macro-made: the emulator build finds kernels by their literal names.)
extern "C" __global__ __launch_bounds__(128) void nr_attention_fwd_f32_c2(const float* q, const float* k, const float* v,
    float* o, float* lse, int Tq, int Tk, int Dk, int Dv, float scale, int causal, int qTiles, int group)
{
    nr_attention_fwd<2>(q, k, v, o, lse, Tq, Tk, Dk, Dv, scale, causal, qTiles, group);
}
extern "C" __global__ __launch_bounds__(128) void nr_attention_fwd_f32_c4(const float* q, const float* k, const float* v,
    float* o, float* lse, int Tq, int Tk, int Dk, int Dv, float scale, int causal, int qTiles, int group)
{
    nr_attention_fwd<4>(q, k, v, o, lse, Tq, Tk, Dk, Dv, scale, causal, qTiles, group);
}
extern "C" __global__ __launch_bounds__(128) void nr_attention_fwd_f32_c8(const float* q, const float* k, const float* v,
    float* o, float* lse, int Tq, int Tk, int Dk, int Dv, float scale, int causal, int qTiles, int group)
{
    nr_attention_fwd<8>(q, k, v, o, lse, Tq, Tk, Dk, Dv, scale, causal, qTiles, group);
}

// ------------------------------------------------------------------ backward 1: D = rowsum(dO ⊙ O)

// o, dO: [rows, Dv] → D: [rows]. A warp per row (grid-stride), lanes over the columns.
extern "C" __global__ void nr_attention_bwd_dot_f32(const float* o, const float* dO, float* D, long long rows, int Dv)
{
    const int lane = threadIdx.x & 31;
    const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
    for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += warps)
    {
        const float* orow = o + r * Dv;
        const float* grow = dO + r * Dv;
        float s = 0.f;
        for (int d = lane; d < Dv; d += 32) s = fmaf(orow[d], grow[d], s);
        s = nr_warp_sum(s);
        if (lane == 0) D[r] = s;
    }
}

// ------------------------------------------------------------------ backward 2: dQ

#define NR_ATTN_DQ_R 8
#define NR_ATTN_DQ_WARPS 4

// A block per (bh, 32 queries), 4 warps × 8 query rows, lane ↔ key of a 32-key tile.
// Shared (floats): Q [32][qs] | dO [32][vs] | K [32][qs] | V [32][vs] | dS strips [4][8][32].
template <int NC>
static __device__ __forceinline__ void nr_attention_bwd_dq(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dq, int Tq, int Tk, int Dk, int Dv, float scale,
    int causal, int qTiles, int group)
{
    const int R = NR_ATTN_DQ_R, BR = NR_ATTN_DQ_R * NR_ATTN_DQ_WARPS;
    NR_DYNAMIC_SHARED(float, smem);
    const int qs = nr_attn_stride(Dk), vs = nr_attn_stride(Dv);
    const int qw = (Dk + 31) & ~31, vw = (Dv + 31) & ~31, Dk4 = (Dk + 3) & ~3, Dv4 = (Dv + 3) & ~3;
    const int nck = qw >> 5;
    float* Qs = smem;
    float* dOs = Qs + BR * qs;
    float* Ks = dOs + BR * vs;
    float* Vs = Ks + NR_ATTN_TILE * qs;
    float* DSs = Vs + NR_ATTN_TILE * vs;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int tile = blockIdx.x % qTiles;
    const long long bh = blockIdx.x / qTiles;
    const int i0 = tile * BR, rows = min(BR, Tq - i0);
    const long long row0 = bh * Tq + i0;
    const long long kvh = bh / group;
    const float* kb = k + kvh * Tk * Dk;
    const float* vb = v + kvh * Tk * Dv;
    const int lastBase = Tk - Tq + i0;

    nr_attn_stage<float>(Qs, qs, qw, q + row0 * Dk, Dk, Dk, rows, BR);
    nr_attn_stage<float>(dOs, vs, vw, dO + row0 * Dv, Dv, Dv, rows, BR);

    float rl[R], rd[R], acc[R][NC];
#pragma unroll
    for (int r = 0; r < R; r++)
    {
        const int row = warp * R + r;
        rl[r] = row < rows ? lse[row0 + row] : 0.f;
        rd[r] = row < rows ? D[row0 + row] : 0.f;
#pragma unroll
        for (int c = 0; c < NC; c++) acc[r][c] = 0.f;
    }

    int kStop = Tk;
    if (causal) kStop = min(kStop, lastBase + rows);
    float* strip = DSs + warp * R * NR_ATTN_TILE;
    for (int t0 = 0; t0 < kStop; t0 += NR_ATTN_TILE)
    {
        const int nk = min(NR_ATTN_TILE, kStop - t0);
        __syncthreads();
        nr_attn_stage<float>(Ks, qs, qw, kb + (long long)t0 * Dk, Dk, Dk, nk, NR_ATTN_TILE);
        nr_attn_stage<float>(Vs, vs, vw, vb + (long long)t0 * Dv, Dv, Dv, nk, NR_ATTN_TILE);
        __syncthreads();

        float s[R], dp[R];
#pragma unroll
        for (int r = 0; r < R; r++) s[r] = dp[r] = 0.f;
        const float* kr = Ks + lane * qs;
        const float* qr = Qs + warp * R * qs;
        for (int d = 0; d < Dk4; d += 4)
        {
            nr_attn_f4 kv = nr_attn_ld4(kr + d);
#pragma unroll
            for (int r = 0; r < R; r++) s[r] = nr_attn_dot4(nr_attn_ld4(qr + r * qs + d), kv, s[r]);
        }
        const float* vr = Vs + lane * vs;
        const float* gr = dOs + warp * R * vs;
        for (int d = 0; d < Dv4; d += 4)
        {
            nr_attn_f4 vv = nr_attn_ld4(vr + d);
#pragma unroll
            for (int r = 0; r < R; r++) dp[r] = nr_attn_dot4(nr_attn_ld4(gr + r * vs + d), vv, dp[r]);
        }
        const int key = t0 + lane;
#pragma unroll
        for (int r = 0; r < R; r++)
        {
            const int row = warp * R + r;
            const bool ok = lane < nk && row < rows && (!causal || key <= lastBase + row);
            const float p = ok ? expf(s[r] * scale - rl[r]) : 0.f;
            strip[r * NR_ATTN_TILE + lane] = ok ? p * (dp[r] - rd[r]) : 0.f;
        }
        __syncwarp();

        // acc[r][c] += Σ_j ds[r][j] · k[j][lane + 32c]
        nr_attn_strip_times_tile<R, NC>(acc, strip, Ks, qs, nk, nck, lane);
    }

#pragma unroll
    for (int r = 0; r < R; r++)
    {
        const int row = warp * R + r;
        if (row < rows)
        {
            float* out = dq + (row0 + row) * Dk;
#pragma unroll
            for (int c = 0; c < NC; c++)
            {
                const int d = lane + 32 * c;
                if (c < nck && d < Dk) out[d] = acc[r][c] * scale;
            }
        }
    }
}

// Grid: qTiles · BH blocks, 128 threads.
extern "C" __global__ __launch_bounds__(128) void nr_attention_bwd_dq_f32_c2(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dq, int Tq, int Tk, int Dk, int Dv, float scale, int causal,
    int qTiles, int group)
{
    nr_attention_bwd_dq<2>(q, k, v, lse, D, dO, dq, Tq, Tk, Dk, Dv, scale, causal, qTiles, group);
}
extern "C" __global__ __launch_bounds__(128) void nr_attention_bwd_dq_f32_c4(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dq, int Tq, int Tk, int Dk, int Dv, float scale, int causal,
    int qTiles, int group)
{
    nr_attention_bwd_dq<4>(q, k, v, lse, D, dO, dq, Tq, Tk, Dk, Dv, scale, causal, qTiles, group);
}
extern "C" __global__ __launch_bounds__(128) void nr_attention_bwd_dq_f32_c8(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dq, int Tq, int Tk, int Dk, int Dv, float scale, int causal,
    int qTiles, int group)
{
    nr_attention_bwd_dq<8>(q, k, v, lse, D, dO, dq, Tq, Tk, Dk, Dv, scale, causal, qTiles, group);
}

// ------------------------------------------------------------------ backward 3: dK, dV

#define NR_ATTN_DKV_R 4
#define NR_ATTN_DKV_WARPS 8

// A block per (K/V head, 32 keys), 8 warps × 4 key rows, lane ↔ query of a 32-query tile; the query tiles of
// the group's query heads kvh·group … kvh·group + group − 1 are visited in turn (a fixed order: deterministic).
// Shared (floats): K [32][qs] | V [32][vs] (the block's keys) | Q [32][qs] | dO [32][vs] (the query tile)
// | lse [32] | D [32] | p strips [8][4][32] | ds strips [8][4][32].
template <int NC>
static __device__ __forceinline__ void nr_attention_bwd_dkdv(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dk, float* dv, int Tq, int Tk, int Dk, int Dv,
    float scale, int causal, int kTiles, int group)
{
    const int R = NR_ATTN_DKV_R, BC = NR_ATTN_DKV_R * NR_ATTN_DKV_WARPS;
    NR_DYNAMIC_SHARED(float, smem);
    const int qs = nr_attn_stride(Dk), vs = nr_attn_stride(Dv);
    const int qw = (Dk + 31) & ~31, vw = (Dv + 31) & ~31, Dk4 = (Dk + 3) & ~3, Dv4 = (Dv + 3) & ~3;
    const int nck = qw >> 5, ncv = vw >> 5;
    float* Ks = smem;
    float* Vs = Ks + BC * qs;
    float* Qs = Vs + BC * vs;
    float* dOs = Qs + NR_ATTN_TILE * qs;
    float* Ls = dOs + NR_ATTN_TILE * vs;
    float* Ds = Ls + NR_ATTN_TILE;
    float* Ps = Ds + NR_ATTN_TILE;
    float* DSs = Ps + NR_ATTN_DKV_WARPS * R * NR_ATTN_TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int tile = blockIdx.x % kTiles;
    const long long kvh = blockIdx.x / kTiles;
    const int j0 = tile * BC, keys = min(BC, Tk - j0);
    const int shift = Tk - Tq; // query i sees key j iff j ≤ shift + i (causal)

    nr_attn_stage<float>(Ks, qs, qw, k + (kvh * Tk + j0) * Dk, Dk, Dk, keys, BC);
    nr_attn_stage<float>(Vs, vs, vw, v + (kvh * Tk + j0) * Dv, Dv, Dv, keys, BC);

    float ak[R][NC], av[R][NC];
#pragma unroll
    for (int r = 0; r < R; r++)
    {
#pragma unroll
        for (int c = 0; c < NC; c++) ak[r][c] = av[r][c] = 0.f;
    }

    // Causal: the first query that sees key j0 is j0 − shift; the earlier ones see none of this block's keys.
    const int iBeg = causal ? max(0, j0 - shift) : 0;
    float* pstrip = Ps + warp * R * NR_ATTN_TILE;
    float* dstrip = DSs + warp * R * NR_ATTN_TILE;
    for (long long bh = kvh * group; bh < (kvh + 1) * group; bh++)
    {
        const float* qb = q + bh * Tq * Dk;
        const float* gb = dO + bh * Tq * Dv;
        const long long lrow0 = bh * Tq;
        for (int i0 = iBeg; i0 < Tq; i0 += NR_ATTN_TILE)
        {
            const int ni = min(NR_ATTN_TILE, Tq - i0);
            __syncthreads();
            nr_attn_stage<float>(Qs, qs, qw, qb + (long long)i0 * Dk, Dk, Dk, ni, NR_ATTN_TILE);
            nr_attn_stage<float>(dOs, vs, vw, gb + (long long)i0 * Dv, Dv, Dv, ni, NR_ATTN_TILE);
            if (threadIdx.x < NR_ATTN_TILE)
            {
                const int i = threadIdx.x;
                Ls[i] = i < ni ? lse[lrow0 + i0 + i] : 0.f;
                Ds[i] = i < ni ? D[lrow0 + i0 + i] : 0.f;
            }
            __syncthreads();

            float s[R], dp[R];
#pragma unroll
            for (int r = 0; r < R; r++) s[r] = dp[r] = 0.f;
            const float* qr = Qs + lane * qs;
            const float* kr = Ks + warp * R * qs;
            for (int d = 0; d < Dk4; d += 4)
            {
                nr_attn_f4 qv = nr_attn_ld4(qr + d);
#pragma unroll
                for (int r = 0; r < R; r++) s[r] = nr_attn_dot4(nr_attn_ld4(kr + r * qs + d), qv, s[r]);
            }
            const float* gr = dOs + lane * vs;
            const float* vr = Vs + warp * R * vs;
            for (int d = 0; d < Dv4; d += 4)
            {
                nr_attn_f4 gv = nr_attn_ld4(gr + d);
#pragma unroll
                for (int r = 0; r < R; r++) dp[r] = nr_attn_dot4(nr_attn_ld4(vr + r * vs + d), gv, dp[r]);
            }
            const int i = i0 + lane;
            const float li = Ls[lane], Di = Ds[lane];
#pragma unroll
            for (int r = 0; r < R; r++)
            {
                const int kr_ = warp * R + r, j = j0 + kr_;
                const bool ok = lane < ni && kr_ < keys && (!causal || j <= shift + i);
                const float p = ok ? expf(s[r] * scale - li) : 0.f;
                pstrip[r * NR_ATTN_TILE + lane] = p;
                dstrip[r * NR_ATTN_TILE + lane] = ok ? p * (dp[r] - Di) : 0.f;
            }
            __syncwarp();

            // av[r][c] += Σ_i p[r][i] · dO[i][lane + 32c]; ak[r][c] += Σ_i ds[r][i] · q[i][lane + 32c]
            const int ni4 = (ni + 3) & ~3;
            for (int i4 = 0; i4 < ni4; i4 += 4)
            {
                nr_attn_f4 pp[R], dd[R];
#pragma unroll
                for (int r = 0; r < R; r++)
                {
                    pp[r] = nr_attn_ld4(pstrip + r * NR_ATTN_TILE + i4);
                    dd[r] = nr_attn_ld4(dstrip + r * NR_ATTN_TILE + i4);
                }
#pragma unroll
                for (int ii = 0; ii < 4; ii++)
                {
                    const float* grow = dOs + (i4 + ii) * vs + lane;
                    const float* qrow = Qs + (i4 + ii) * qs + lane;
#pragma unroll
                    for (int c = 0; c < NC; c++)
                    {
                        if (c < ncv)
                        {
                            const float gg = grow[32 * c];
#pragma unroll
                            for (int r = 0; r < R; r++) av[r][c] = fmaf(nr_attn_get(pp[r], ii), gg, av[r][c]);
                        }
                        if (c < nck)
                        {
                            const float qq = qrow[32 * c];
#pragma unroll
                            for (int r = 0; r < R; r++) ak[r][c] = fmaf(nr_attn_get(dd[r], ii), qq, ak[r][c]);
                        }
                    }
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < R; r++)
    {
        const int kr_ = warp * R + r;
        if (kr_ < keys)
        {
            float* ko = dk + (kvh * Tk + j0 + kr_) * Dk;
            float* vo = dv + (kvh * Tk + j0 + kr_) * Dv;
#pragma unroll
            for (int c = 0; c < NC; c++)
            {
                const int d = lane + 32 * c;
                if (c < nck && d < Dk) ko[d] = ak[r][c] * scale;
                if (c < ncv && d < Dv) vo[d] = av[r][c];
            }
        }
    }
}

// Grid: kTiles · (BH / group) blocks, 256 threads.
extern "C" __global__ __launch_bounds__(256) void nr_attention_bwd_dkdv_f32_c2(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dk, float* dv, int Tq, int Tk, int Dk, int Dv, float scale, int causal,
    int kTiles, int group)
{
    nr_attention_bwd_dkdv<2>(q, k, v, lse, D, dO, dk, dv, Tq, Tk, Dk, Dv, scale, causal, kTiles, group);
}
extern "C" __global__ __launch_bounds__(256) void nr_attention_bwd_dkdv_f32_c4(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dk, float* dv, int Tq, int Tk, int Dk, int Dv, float scale, int causal,
    int kTiles, int group)
{
    nr_attention_bwd_dkdv<4>(q, k, v, lse, D, dO, dk, dv, Tq, Tk, Dk, Dv, scale, causal, kTiles, group);
}
extern "C" __global__ __launch_bounds__(256) void nr_attention_bwd_dkdv_f32_c8(const float* q, const float* k, const float* v,
    const float* lse, const float* D, const float* dO, float* dk, float* dv, int Tq, int Tk, int Dk, int Dv, float scale, int causal,
    int kTiles, int group)
{
    nr_attention_bwd_dkdv<8>(q, k, v, lse, D, dO, dk, dv, Tq, Tk, Dk, Dv, scale, causal, kTiles, group);
}
