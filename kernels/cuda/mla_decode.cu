// Source: MLA of DeepSeek-V2 (arXiv:2405.04434) with absorbed weights; FlashMLA's cache layout.
// Multi-head latent attention decode on the compressed cache (CudaKernels.MlaDecode, FlashMLA's layout):
// q: [batch, heads, Dq] (Dq = dLatent + dRope: the absorbed no-rope part, then the rope part),
// cache: [batch, maxLen, Dq] (fp32 or bf16 bits), lengths: [batch]; o: [batch, heads, dLatent] =
// softmax(scale · q·cacheᵀ) · cache[:, :dLatent] over the first lengths[b] tokens, lse: [batch, heads].
//
// Why it looks like this: a decode step reads the whole cache once and does 2·(Dq + dLatent) FLOPs per
// (token, head) with it, so per cache byte the work grows with the number of heads. At 128 heads, 576/512
// and a bf16 cache that is ~250 FLOP/byte: far past what CUDA cores give per byte of HBM (~20), so the bf16
// path runs on the tensor cores and the fp32 path is the exact (slow) one.
//
// nr_mla_decode_bf16_tc (bf16 cache, Dq and dLatent multiples of 8): a block per (sequence, split, group of
// 64 heads), 8 warps. The cache is streamed in tiles of 32 tokens by cp.async into a double buffer (tile
// i + 1 lands while tile i is used); a tile is read from global memory once for all 64 heads. q is converted
// to bf16 once per block and stays in shared memory.
//   S = q·tileᵀ [64 heads × 32 tokens] by mma.m16n8k16 (bf16 in, fp32 out): warp w computes heads
//   16·(w % 4) .. +15 × tokens 16·(w / 4) .. +15 (2 n-blocks); the two warps of a head block trade their
//   row maxima through shared memory; p = exp(s − m) rounded to bf16 goes to a shared P [64 × 32].
//   O += P·V with V the first dLatent columns of the same tile: warp w owns O for all 64 heads × columns
//   64w .. 64w + 63 (4 m-blocks × 8 n-blocks × 4 fp32 = 128 registers; 64 heads × 512 columns is 128 KB of
//   registers, half the SM's file, which is why a block takes 64 heads and not 128: with 128 heads the two
//   head groups of a (sequence, split) are adjacent in the grid and read the same tiles at the same time,
//   so the second read is an L2 hit).
//   Fragments: q and K as 32-bit pairs along d (row stride ≡ 4 words mod 32: the 8 g × 4 t lanes hit 32
//   banks); V's B fragment pairs two tokens of one column, two 16-bit loads per register (the same stride
//   keeps those conflict-free too).
//   Precision: q and p are rounded to bf16 (FlashMLA's precision; the cache is bf16 already), every sum in
//   fp32.
//   Expected bottleneck: shared memory. Per 32-token tile and 64 heads at 576/512 a block issues ~2300
//   32-bit fragment loads for S (4 of q + 4 of K per 2 mma a warp), ~770 for P·V and ~290 wavefronts of
//   cp.async stores, ~3.4k shared-memory cycles against ~1.1k mma.sync (~1.6k cycles) and 18 KB of HBM
//   traffic (the tile's 37 KB over the two head groups). That is ~40–50 % of an H100's copy bandwidth at 128
//   heads (not the 60 % aimed at: q held in registers or wgmma/ldmatrix would be the next steps, and the
//   register file cannot hold O for all 128 heads in one block); at ≤ 32 heads the same kernel is bound by
//   HBM. Untimed: no GPU was available when this was written.
// nr_mla_decode_f32 / nr_mla_decode_bf16 (fp32 cache, or dims the tensor-core kernel does not take): the
//   CUDA-core rows core of attention.cuh with 32 heads per block (8 warps × 4 heads, lane ↔ token, O in
//   registers with lane ↔ column), the value read from the key tile in shared memory (same cache rows).
//   Compute-bound at many heads; exact to fp32 rounding.
// Splits: when batch × head groups cannot fill the GPU, the sequence is cut into splits of splitTokens;
//   each block writes its normalised partial o and lse to [batch, nsplit, heads, ...] and
//   nr_mla_decode_merge combines them (o = Σ_s exp(lse_s − lse) o_s, lse = log Σ_s exp(lse_s)). A split past
//   a sequence's length writes o = 0, lse = −∞ and weighs nothing. With one split the blocks write o and lse
//   directly.
#include "prelude.cuh"
#include "attention.cuh"

// ------------------------------------------------------------------ tensor-core kernel (bf16 cache)

#define NR_MLA_HB 64    // heads per block: 4 m-blocks of 16
#define NR_MLA_TT 32    // tokens per tile
#define NR_MLA_PSW 20   // words per row of the P tile (32 bf16 + 8 pad: ≡ 4 mod 8, conflict-free fragments)

static __device__ __forceinline__ uint32_t nr_mla_pack(float lo, float hi)
{
    return (uint32_t)nr_f32_to_bf16(lo) | ((uint32_t)nr_f32_to_bf16(hi) << 16);
}

// Issues the cp.async copies of tokens t0 .. t0 + 31 (rows past len − 1 repeat the last token: finite values
// whose probabilities are masked to 0) into dst [32][STR] and commits them.
static __device__ __forceinline__ void nr_mla_issue_tile(uint16_t* dst, const uint16_t* seq, int t0, int len, int Dq, int STR)
{
    const int cpr = Dq >> 3; // 16-byte chunks per row
    const int total = NR_MLA_TT * cpr;
    for (int i = threadIdx.x; i < total; i += blockDim.x)
    {
        const int r = i / cpr, c = i - r * cpr;
        const int tok = min(t0 + r, len - 1);
        nr_cp_async16(dst + r * STR + c * 8, seq + (long long)tok * Dq + c * 8);
    }
    nr_cp_async_commit();
}

// Grid: groups · nsplit · batch blocks (head group fastest), 256 threads.
// Shared (bytes): q [64][STR] bf16 | two tiles [32][STR] bf16 | P [64][20] words | row maxima [2][64] and
// row sums [2][64] fp32, STR = roundup(Dq, 64) + 8. o / lse are [batch, nsplit, heads, dLatent] / [.., heads].
extern "C" __global__ __launch_bounds__(256, 1) void nr_mla_decode_bf16_tc(const float* q, const uint16_t* cache,
    const int* lengths, float* o, float* lse, int heads, int maxLen, int dLatent, int Dq, float scale,
    int splitTokens, int nsplit, int groups)
{
    NR_DYNAMIC_SHARED(uint16_t, smem);
    const int STR = ((Dq + 63) & ~63) + 8, SW = STR >> 1;
    uint16_t* Qs = smem;
    uint16_t* Ts = Qs + NR_MLA_HB * STR;
    uint32_t* Pw = (uint32_t*)(Ts + 2 * NR_MLA_TT * STR);
    float* smax = (float*)(Pw + NR_MLA_HB * NR_MLA_PSW);
    float* ssum = smax + 2 * NR_MLA_HB;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const float NEG = nr_attn_neg_inf();

    const int grp = blockIdx.x % groups;
    const int rest = blockIdx.x / groups;
    const int split = rest % nsplit, b = rest / nsplit;
    const int len = max(0, min(lengths[b], maxLen));
    const int k0 = split * splitTokens, k1 = min(k0 + splitTokens, len);
    const int h0 = grp * NR_MLA_HB, hn = min(NR_MLA_HB, heads - h0), mbCount = (hn + 15) >> 4;
    const long long orow = ((long long)b * nsplit + split) * heads + h0;
    if (k0 >= k1)
    {
        for (int i = tid; i < hn * dLatent; i += blockDim.x) o[orow * dLatent + i] = 0.f;
        if (tid < hn) lse[orow + tid] = NEG;
        return;
    }
    const uint16_t* seq = cache + (long long)b * maxLen * Dq;
    const int KS = (Dq + 15) >> 4; // k-steps of S = q·Kᵀ
    const int nTiles = (k1 - k0 + NR_MLA_TT - 1) / NR_MLA_TT;

    nr_mla_issue_tile(Ts, seq, k0, len, Dq, STR);

    // q → bf16 (zero rows past the heads, zero columns past Dq); the tiles' columns Dq .. 16·KS − 1 are zero
    // too (cp.async never writes them).
    const float* qb = q + ((long long)b * heads + h0) * Dq;
    for (int r = warp; r < NR_MLA_HB; r += 8)
        for (int c = lane; c < STR; c += 32)
            Qs[r * STR + c] = (r < hn && c < Dq) ? nr_f32_to_bf16(qb[(long long)r * Dq + c]) : (uint16_t)0;
    for (int i = tid; i < 2 * NR_MLA_TT * (KS * 16 - Dq); i += blockDim.x)
    {
        const int w = KS * 16 - Dq, r = i / w;
        Ts[r * STR + Dq + (i - r * w)] = 0;
    }

    const int mbq = warp & 3, th = warp >> 2; // the S tile of this warp: heads 16·mbq.., tokens 16·th..
    const bool qkActive = mbq < mbCount;
    const int NB = dLatent >> 3, nb0 = warp * 8, nbCount = min(8, NB - nb0); // O columns of this warp
    float m[4][2], lsum[2] = {0.f, 0.f};
    float acc[4][8][4];
#pragma unroll
    for (int mb = 0; mb < 4; mb++)
    {
        m[mb][0] = m[mb][1] = NEG;
#pragma unroll
        for (int nb = 0; nb < 8; nb++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mb][nb][e] = 0.f;
    }

    const uint32_t* Qw = (const uint32_t*)Qs;
    for (int it = 0; it < nTiles; it++)
    {
        const int t0 = k0 + it * NR_MLA_TT;
        nr_cp_async_wait_all();
        __syncthreads(); // (A) tile it landed for everyone; everyone is done with tile it − 1, P and the maxima
        if (it + 1 < nTiles) nr_mla_issue_tile(Ts + ((it + 1) & 1) * NR_MLA_TT * STR, seq, t0 + NR_MLA_TT, len, Dq, STR);
        const uint16_t* T = Ts + (it & 1) * NR_MLA_TT * STR;
        const uint32_t* Tw = (const uint32_t*)T;

        // S: c[0..1] = S[g][2t..2t+1], c[2..3] = S[g + 8][2t..2t+1] of n-block nb (tokens 16·th + 8·nb ..).
        float sc[2][4];
#pragma unroll
        for (int nb = 0; nb < 2; nb++)
#pragma unroll
            for (int e = 0; e < 4; e++) sc[nb][e] = 0.f;
        if (qkActive)
        {
            const uint32_t* qa = Qw + (mbq * 16 + g) * SW + t;
            const uint32_t* kb = Tw + (th * 16 + g) * SW + t;
#pragma unroll 4
            for (int ks = 0; ks < KS; ks++)
            {
                uint32_t a[4] = {qa[ks * 8], qa[8 * SW + ks * 8], qa[ks * 8 + 4], qa[8 * SW + ks * 8 + 4]};
                uint32_t b0[2] = {kb[ks * 8], kb[ks * 8 + 4]};
                uint32_t b1[2] = {kb[8 * SW + ks * 8], kb[8 * SW + ks * 8 + 4]};
                nr_mma_bf16_16816(sc[0], a, b0);
                nr_mma_bf16_16816(sc[1], a, b1);
            }
        }
        float pm0 = NEG, pm1 = NEG;
#pragma unroll
        for (int nb = 0; nb < 2; nb++)
#pragma unroll
            for (int e = 0; e < 2; e++)
            {
                const bool ok = t0 + th * 16 + nb * 8 + 2 * t + e < k1;
                sc[nb][e] = ok ? sc[nb][e] * scale : NEG;
                sc[nb][2 + e] = ok ? sc[nb][2 + e] * scale : NEG;
                pm0 = sc[nb][e] > pm0 ? sc[nb][e] : pm0;
                pm1 = sc[nb][2 + e] > pm1 ? sc[nb][2 + e] : pm1;
            }
#pragma unroll
        for (int x = 1; x <= 2; x <<= 1)
        {
            const float u0 = __shfl_xor_sync(NR_FULL_MASK, pm0, x), u1 = __shfl_xor_sync(NR_FULL_MASK, pm1, x);
            pm0 = u0 > pm0 ? u0 : pm0;
            pm1 = u1 > pm1 ? u1 : pm1;
        }
        if (qkActive && t == 0)
        {
            smax[th * NR_MLA_HB + mbq * 16 + g] = pm0;
            smax[th * NR_MLA_HB + mbq * 16 + g + 8] = pm1;
        }
        __syncthreads(); // (B1) the row maxima of the tile

        // Every warp tracks m for the rows of its O fragments (g and g + 8 of every m-block).
        float alpha[4][2], mu[4][2];
#pragma unroll
        for (int mb = 0; mb < 4; mb++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++)
            {
                alpha[mb][hh] = 1.f;
                mu[mb][hh] = 0.f;
                if (mb < mbCount)
                {
                    const int row = mb * 16 + g + 8 * hh;
                    const float a0 = smax[row], a1 = smax[NR_MLA_HB + row];
                    float mn = a0 > a1 ? a0 : a1;
                    mn = mn > m[mb][hh] ? mn : m[mb][hh];
                    mu[mb][hh] = mn == NEG ? 0.f : mn;
                    alpha[mb][hh] = __expf(m[mb][hh] - mu[mb][hh]);
                    m[mb][hh] = mn;
                }
            }
        if (qkActive)
        {
            float mu0 = 0.f, mu1 = 0.f, al0 = 1.f, al1 = 1.f;
#pragma unroll
            for (int mb = 0; mb < 4; mb++)
                if (mb == mbq)
                {
                    mu0 = mu[mb][0];
                    mu1 = mu[mb][1];
                    al0 = alpha[mb][0];
                    al1 = alpha[mb][1];
                }
            lsum[0] *= al0;
            lsum[1] *= al1;
#pragma unroll
            for (int nb = 0; nb < 2; nb++)
            {
                // Round p to bf16 here, and sum the rounded values: the P·V weights and l agree.
                const float p0 = nr_bf16_to_f32(nr_f32_to_bf16(__expf(sc[nb][0] - mu0)));
                const float p1 = nr_bf16_to_f32(nr_f32_to_bf16(__expf(sc[nb][1] - mu0)));
                const float p2 = nr_bf16_to_f32(nr_f32_to_bf16(__expf(sc[nb][2] - mu1)));
                const float p3 = nr_bf16_to_f32(nr_f32_to_bf16(__expf(sc[nb][3] - mu1)));
                lsum[0] += p0 + p1;
                lsum[1] += p2 + p3;
                const int word = th * 8 + nb * 4 + t;
                Pw[(mbq * 16 + g) * NR_MLA_PSW + word] = nr_mla_pack(p0, p1);
                Pw[(mbq * 16 + g + 8) * NR_MLA_PSW + word] = nr_mla_pack(p2, p3);
            }
        }
        __syncthreads(); // (B2) P complete

        // O = O·alpha + P·V over the tile's two 16-token k-steps.
#pragma unroll
        for (int mb = 0; mb < 4; mb++)
#pragma unroll
            for (int nb = 0; nb < 8; nb++)
            {
                acc[mb][nb][0] *= alpha[mb][0];
                acc[mb][nb][1] *= alpha[mb][0];
                acc[mb][nb][2] *= alpha[mb][1];
                acc[mb][nb][3] *= alpha[mb][1];
            }
        if (nbCount > 0)
        {
#pragma unroll
            for (int ks = 0; ks < 2; ks++)
            {
                uint32_t a[4][4];
#pragma unroll
                for (int mb = 0; mb < 4; mb++)
                {
                    const uint32_t* pr = Pw + (mb * 16 + g) * NR_MLA_PSW + ks * 8 + t;
                    a[mb][0] = pr[0];
                    a[mb][1] = pr[8 * NR_MLA_PSW];
                    a[mb][2] = pr[4];
                    a[mb][3] = pr[8 * NR_MLA_PSW + 4];
                }
                const uint16_t* vr = T + (ks * 16 + 2 * t) * STR + g;
#pragma unroll
                for (int nb = 0; nb < 8; nb++)
                {
                    if (nb < nbCount)
                    {
                        const int col = (nb0 + nb) * 8;
                        uint32_t bf[2];
                        bf[0] = (uint32_t)vr[col] | ((uint32_t)vr[STR + col] << 16);
                        bf[1] = (uint32_t)vr[8 * STR + col] | ((uint32_t)vr[9 * STR + col] << 16);
#pragma unroll
                        for (int mb = 0; mb < 4; mb++)
                            if (mb < mbCount) nr_mma_bf16_16816(acc[mb][nb], a[mb], bf);
                    }
                }
            }
        }
    }

    // l: the 4 lanes of a row, then the two token halves through shared memory.
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1)
    {
        lsum[0] += __shfl_xor_sync(NR_FULL_MASK, lsum[0], x);
        lsum[1] += __shfl_xor_sync(NR_FULL_MASK, lsum[1], x);
    }
    if (qkActive && t == 0)
    {
        ssum[th * NR_MLA_HB + mbq * 16 + g] = lsum[0];
        ssum[th * NR_MLA_HB + mbq * 16 + g + 8] = lsum[1];
    }
    __syncthreads();
#pragma unroll
    for (int mb = 0; mb < 4; mb++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
        {
            const int row = mb * 16 + g + 8 * hh;
            if (mb < mbCount && row < hn)
            {
                const float L = ssum[row] + ssum[NR_MLA_HB + row];
                const float inv = 1.f / L;
                float* out = o + (orow + row) * dLatent;
#pragma unroll
                for (int nb = 0; nb < 8; nb++)
                    if (nb < nbCount)
                    {
                        const int col = (nb0 + nb) * 8 + 2 * t;
                        out[col] = acc[mb][nb][2 * hh] * inv;
                        out[col + 1] = acc[mb][nb][2 * hh + 1] * inv;
                    }
                if (warp == 0 && t == 0) lse[orow + row] = m[mb][hh] + logf(L);
            }
        }
}

// ------------------------------------------------------------------ CUDA-core kernels (fp32 or bf16 cache)

#define NR_MLA_CC_R 4
#define NR_MLA_CC_WARPS 8
#define NR_MLA_CC_HB (NR_MLA_CC_R * NR_MLA_CC_WARPS)
#define NR_MLA_CC_NC 16 // dLatent ≤ 512

template <class T>
static __device__ __forceinline__ void nr_mla_decode_cc(const float* q, const T* cache, const int* lengths, float* o,
    float* lse, int heads, int maxLen, int dLatent, int Dq, float scale, int splitTokens, int nsplit, int groups)
{
    const int grp = blockIdx.x % groups;
    const int rest = blockIdx.x / groups;
    const int split = rest % nsplit, b = rest / nsplit;
    const int len = max(0, min(lengths[b], maxLen));
    const int k0 = split * splitTokens, k1 = min(k0 + splitTokens, len);
    const int h0 = grp * NR_MLA_CC_HB, hn = min(NR_MLA_CC_HB, heads - h0);
    const long long orow = ((long long)b * nsplit + split) * heads + h0;
    if (k0 >= k1)
    {
        for (int i = threadIdx.x; i < hn * dLatent; i += blockDim.x) o[orow * dLatent + i] = 0.f;
        if ((int)threadIdx.x < hn) lse[orow + threadIdx.x] = nr_attn_neg_inf();
        return;
    }
    NrAttnRowsArgs a;
    a.q = q + ((long long)b * heads + h0) * Dq;
    a.k = cache + (long long)b * maxLen * Dq;
    a.v = a.k;
    a.ldq = Dq;
    a.ldk = Dq;
    a.ldv = Dq;
    a.rows = hn;
    a.Dk = Dq;
    a.Dv = dLatent;
    a.kBeg = k0;
    a.kEnd = k1;
    a.causal = 0;
    a.lastBase = 0;
    a.kvShared = 1;
    a.scale = scale;
    a.o = o + orow * dLatent;
    a.ldo = dLatent;
    a.lse = lse + orow;
    nr_attn_rows_forward<NR_MLA_CC_R, NR_MLA_CC_WARPS, T, NR_MLA_CC_NC>(a);
}

// Grid: groups · nsplit · batch blocks (32 heads a group), 256 threads; shared: attention.cuh's rows core.
extern "C" __global__ __launch_bounds__(256) void nr_mla_decode_f32(const float* q, const float* cache, const int* lengths,
    float* o, float* lse, int heads, int maxLen, int dLatent, int Dq, float scale, int splitTokens, int nsplit, int groups)
{
    nr_mla_decode_cc<float>(q, cache, lengths, o, lse, heads, maxLen, dLatent, Dq, scale, splitTokens, nsplit, groups);
}

extern "C" __global__ __launch_bounds__(256) void nr_mla_decode_bf16(const float* q, const uint16_t* cache, const int* lengths,
    float* o, float* lse, int heads, int maxLen, int dLatent, int Dq, float scale, int splitTokens, int nsplit, int groups)
{
    nr_mla_decode_cc<uint16_t>(q, cache, lengths, o, lse, heads, maxLen, dLatent, Dq, scale, splitTokens, nsplit, groups);
}

// ------------------------------------------------------------------ merge of the splits

// po: [batch, nsplit, heads, dLatent], plse: [batch, nsplit, heads] → o: [batch, heads, dLatent],
// lse: [batch, heads]. A block per (sequence, head) row, grid-stride; dynamic shared: the nsplit weights.
extern "C" __global__ void nr_mla_decode_merge(const float* po, const float* plse, float* o, float* lse, int batch,
    int heads, int nsplit, int dLatent)
{
    NR_DYNAMIC_SHARED(float, w);
    __shared__ float scratch[32];
    const float NEG = nr_attn_neg_inf();
    for (long long row = blockIdx.x; row < (long long)batch * heads; row += gridDim.x)
    {
        const long long b = row / heads, h = row - b * heads;
        float mx = NEG;
        for (int s = threadIdx.x; s < nsplit; s += blockDim.x)
        {
            const float v = plse[(b * nsplit + s) * heads + h];
            mx = (v != v || v > mx) ? v : mx;
        }
        mx = nr_block_max(mx, scratch);
        const float mu = mx == NEG ? 0.f : mx;
        float sum = 0.f;
        for (int s = threadIdx.x; s < nsplit; s += blockDim.x)
        {
            const float e = expf(plse[(b * nsplit + s) * heads + h] - mu);
            w[s] = e;
            sum += e;
        }
        sum = nr_block_sum(sum, scratch); // its barriers also publish w
        const float inv = sum == 0.f ? 0.f : 1.f / sum;
        for (int d = threadIdx.x; d < dLatent; d += blockDim.x)
        {
            float acc = 0.f;
            for (int s = 0; s < nsplit; s++) acc = fmaf(w[s], po[((b * nsplit + s) * heads + h) * dLatent + d], acc);
            o[row * dLatent + d] = acc * inv;
        }
        if (threadIdx.x == 0) lse[row] = sum == 0.f ? NEG : mu + logf(sum);
        __syncthreads(); // w is rewritten for the next row
    }
}
