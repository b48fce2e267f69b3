// Source: FlashAttention-2 (arXiv:2307.08691), forward and backward.
// Flash attention on bf16 tensor cores (FlashAttention-2 style, mma.sync m16n8k16, fp32 accumulation and
// softmax). Layouts and the bottom-right causal rule of IKernels.AttentionForward/Backward:
//   q: [BH, Tq, Dk]  k: [BH / group, Tk, Dk]  v: [BH / group, Tk, Dv]  o, dO: [BH, Tq, Dv]  lse: [BH, Tq] (fp32,
//   natural log); query head bh reads K/V head bh / group (grouped-query attention, arXiv:2305.13245).
//   causal: query i (absolute position Tk − Tq + i) sees keys 0 .. Tk − Tq + i.
// bf16 tensors are raw bits (uint16_t). Dk, Dv: multiples of 16 up to 256 (the host picks a compiled variant
// whose maxima cover them; the k-steps / n-tiles past the real width are skipped by warp-uniform guards, so one
// variant serves every width up to its maximum without reading the unwritten tile columns).
//
// Forward (nr_attnbf16_fwd_*): a block of 4 warps per (bh, 64-query tile); warp w owns query rows 16w..16w+15.
//   Q fragments stay in registers (A operand of S = Q·Kᵀ) when Dk ≤ 192; for the 256 variant they are re-read
//   from the shared Q tile each key tile (O alone is 128 registers a lane there). Key tiles of 64 are staged in
//   shared memory by cp.async with one K and one V buffer, overlapped FA2-style: V_j is fetched while S_j and its
//   softmax are computed, K_{j+1} while P_j·V_j is. Online softmax in the log2 domain on the fp32 accumulators
//   (row max / row sum over the 4 lanes of a quad by __shfl_xor 1, 2); P is rounded to bf16 and fed back as the
//   A operand of P·V without leaving registers (see nra_forward). Causal: key tiles past the diagonal are never
//   loaded; only tiles crossing the diagonal or the end of the keys are masked. Blocks are numbered heaviest
//   query tile first so the causal tail does not idle the SMs.
//   Shared memory: 64·(2·(DK+8) + DV+8)·2 B (rows padded by 8 bf16 = 16 B so ldmatrix's 8 row addresses fall in
//   8 different bank groups): 52 KB at 128/128 (2–3 blocks an SM, register-limited), 68.6 KB at 192/128, 101 KB
//   at 256/256. Expected bottleneck at D = 128: each warp reads the whole K and V tile from shared memory
//   (64 ldmatrix.x4 per 128 mma), so shared-memory bandwidth and the exp/max/FMA work of the softmax (MUFU)
//   compete with the tensor pipe — the FA2 balance. Global (mostly L2) latency is hidden by the K/V overlap
//   above and by 2–3 resident blocks an SM; every block re-reads its head's K and V (L2 traffic ∝ Tq/64, the
//   price of 64-query tiles: 128-query tiles of 8 warps would halve it).
//
// Backward, FlashAttention-2 (three launches):
//   1. nr_attnbf16_bwd_prep: per query row Δ = rowsum(dO ⊙ O) in fp32 and lse·log2 e (+∞ for rows that see no
//      key and for the padding rows up to a multiple of 64, so P recomputes to exactly 0 there without a mask),
//      both as [BH, TqPad]; zeroes the fp32 dQ accumulator.
//   2. nr_attnbf16_bwd_*: a block of 4 warps per (K/V head, 64-key tile); warp w owns keys 16w..16w+15 and
//      keeps dK, dV for them in fp32 fragments over the loop on 64-query tiles (from the first tile that sees the
//      key tile when causal) of each query head of the group in turn, so the group's sum needs no atomics. Per
//      query tile, in two halves of 32 queries (to keep the S and dP accumulators at 16 registers each beside dK
//      and dV's 2·DK/8·4): Sᵀ = K·Qᵀ, Pᵀ = 2^(Sᵀ·scale·log2 e − lse₂), dPᵀ = V·dOᵀ,
//      dSᵀ = Pᵀ ⊙ (dPᵀ − Δ); dV += Pᵀ·dO and dK += dSᵀ·Q with Pᵀ, dSᵀ rounded to bf16 straight from the
//      accumulators as A operands; dSᵀ also goes to shared memory. After a barrier each warp takes 16 queries of
//      the tile and computes its dQ rows = dS·K (A from the shared dSᵀ through ldmatrix.trans) and adds them
//      into the fp32 accumulator with atomicAdd.
//      dQ by atomics rather than a deterministic second pass: the pass would recompute S and dP per (query,
//      key) tile — 7 instead of 5 tile GEMMs, +40% tensor work — while the atomics are fire-and-forget RED
//      operations resolved in L2, and two blocks only hit the same dQ rows when they sit on the same query tile
//      at the same time. Cost: dQ's fp32 summation order varies from run to run (not bit-reproducible).
//      Q is double-buffered (Q_{i+1} is fetched during the whole of iteration i), dO/lse/Δ single-buffered and
//      fetched during the dQ phase. Shared memory: 64·(3·(DK+8) + 2·(DV+8))·2 + 64·72·2 + 512 B = 96.7 KB at
//      128/128 (2 blocks an SM), 121 KB at 192/128, 179 KB at 256/256. Expected bottleneck: shared-memory reads
//      (~180 ldmatrix.x4 per 320 mma a warp and query tile) and the dQ atomics; dK, dV at 2·64 registers a lane
//      at D = 128 leave little room, and the 256/256 variant (2·128 accumulator registers) is expected to spill.
//   3. nr_attnbf16_dq_convert: dq = bf16(scale · dQacc).
#include "prelude.cuh"
#include "attention_bf16.cuh"

#define NRA_LOG2E 1.4426950408889634f
#define NRA_LN2 0.6931471805599453f

// ================================================================ forward
template <int DK, int DV, bool QREG>
static __device__ __forceinline__ void nra_forward(const uint16_t* q, const uint16_t* k, const uint16_t* v, uint16_t* o,
    float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scaleLog2, int causal, int group)
{
    constexpr int SK = DK + 8, SV = DV + 8; // shared row strides (elements)
    constexpr int KS = DK / 16;             // k-steps of S = Q·Kᵀ
    constexpr int VP = DV / 16;             // pairs of 8-wide n-tiles of O
    NR_DYNAMIC_SHARED(uint16_t, smem);
    uint16_t* sQ = smem;          // [64][SK]
    uint16_t* sK = sQ + 64 * SK;  // [64][SK]
    uint16_t* sV = sK + 64 * SK;  // [64][SV]

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int nQT = (Tq + 63) >> 6;
    const int qt = nQT - 1 - (int)(blockIdx.x / (unsigned)BH); // heaviest (last) query tiles first
    const int bh = (int)(blockIdx.x % (unsigned)BH);
    const int q0 = qt * 64, off = Tk - Tq;
    const uint16_t* qb = q + (long long)bh * Tq * Dk;
    const uint16_t* kb = k + (long long)(bh / group) * Tk * Dk;
    const uint16_t* vb = v + (long long)(bh / group) * Tk * Dv;

    // Keys [0, kEnd) are visible to some valid query of the tile; tiles past it are never touched.
    const int kEnd = causal ? min(Tk, min(q0 + 64, Tq) + off) : Tk;
    const int nKT = kEnd > 0 ? (kEnd + 63) >> 6 : 0;

    nra_load_tile64(sQ, SK, qb, Dk, q0, Tq);
    if (nKT > 0) nra_load_tile64(sK, SK, kb, Dk, 0, Tk);
    nra_cp_async_commit();

    const int row0 = warp * 16;            // this warp's first row in the tile
    const int qa = q0 + row0 + g, qc = qa + 8; // absolute query rows of accumulator elements 0,1 and 2,3
    uint32_t qf[QREG ? KS : 1][4];
    float oacc[2 * VP][4];
#pragma unroll
    for (int n = 0; n < 2 * VP; n++) oacc[n][0] = oacc[n][1] = oacc[n][2] = oacc[n][3] = 0.f;
    // Running max (log2 domain, of the scaled scores) and this lane's partial row sums; the sums are reduced over
    // the quad only at the end, which is valid because every rescale factor is uniform across the quad.
    float m0 = -nra_inf(), m1 = -nra_inf(), l0 = 0.f, l1 = 0.f;

    for (int j = 0; j < nKT; j++)
    {
        nra_cp_async_wait_all();
        __syncthreads(); // K_j (and Q) landed for everyone; every warp is done with V_{j-1}
        if constexpr (QREG)
        {
            if (j == 0)
            {
#pragma unroll
                for (int kk = 0; kk < KS; kk++)
                    if (kk * 16 < Dk) nra_ldsm_x4<NRA_ORDER_A, false>(qf[kk], sQ + row0 * SK + kk * 16, SK);
            }
        }
        nra_load_tile64(sV, SV, vb, Dv, j * 64, Tk);
        nra_cp_async_commit();

        // S[16 rows][64 keys] = Q·Kᵀ: s[n] is the 16×8 tile of keys 8n..8n+7.
        float s[8][4];
#pragma unroll
        for (int n = 0; n < 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KS; kk++)
        {
            if (kk * 16 >= Dk) continue;
            uint32_t a[4];
            if constexpr (QREG)
            {
                a[0] = qf[kk][0];
                a[1] = qf[kk][1];
                a[2] = qf[kk][2];
                a[3] = qf[kk][3];
            }
            else nra_ldsm_x4<NRA_ORDER_A, false>(a, sQ + row0 * SK + kk * 16, SK);
#pragma unroll
            for (int np = 0; np < 4; np++)
            {
                uint32_t b[4]; // K rows 16np.. are B = Kᵀ stored n-major
                nra_ldsm_x4<NRA_ORDER_B, false>(b, sK + np * 16 * SK + kk * 16, SK);
                nr_mma_bf16_16816(s[2 * np], a, b);
                nr_mma_bf16_16816(s[2 * np + 1], a, b + 2);
            }
        }

        // Scale into the log2 domain; mask keys past Tk and, causally, past each row's horizon.
        const int k0 = j * 64;
        const bool mask = k0 + 64 > Tk || (causal && k0 + 63 > q0 + off);
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++)
            {
                float x = s[n][e] * scaleLog2;
                if (mask)
                {
                    int key = k0 + n * 8 + 2 * t + (e & 1), row = e < 2 ? qa : qc;
                    if (key >= Tk || (causal && key > row + off)) x = -nra_inf();
                }
                s[n][e] = x;
            }

        // Online softmax. A row that has seen only masked keys keeps max −∞; it is shifted by 0 instead (so
        // −∞ − −∞ never makes a NaN) and its p, l, O stay 0.
        float mx0 = s[0][0], mx1 = s[0][2];
#pragma unroll
        for (int n = 0; n < 8; n++)
        {
            mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(NR_FULL_MASK, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(NR_FULL_MASK, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(NR_FULL_MASK, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(NR_FULL_MASK, mx1, 2));
        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        const float sh0 = mn0 == -nra_inf() ? 0.f : mn0, sh1 = mn1 == -nra_inf() ? 0.f : mn1;
        const float al0 = nra_exp2(m0 - sh0), al1 = nra_exp2(m1 - sh1);
        m0 = mn0;
        m1 = mn1;
        float rs0 = 0.f, rs1 = 0.f;
#pragma unroll
        for (int n = 0; n < 8; n++)
        {
            s[n][0] = nra_exp2(s[n][0] - sh0);
            s[n][1] = nra_exp2(s[n][1] - sh0);
            s[n][2] = nra_exp2(s[n][2] - sh1);
            s[n][3] = nra_exp2(s[n][3] - sh1);
            rs0 += s[n][0] + s[n][1];
            rs1 += s[n][2] + s[n][3];
        }
        l0 = l0 * al0 + rs0;
        l1 = l1 * al1 + rs1;
#pragma unroll
        for (int n = 0; n < 2 * VP; n++)
        {
            oacc[n][0] *= al0;
            oacc[n][1] *= al0;
            oacc[n][2] *= al1;
            oacc[n][3] *= al1;
        }

        nra_cp_async_wait_all();
        __syncthreads(); // V_j landed for everyone; every warp is done reading K_j
        if (j + 1 < nKT)
        {
            nra_load_tile64(sK, SK, kb, Dk, (j + 1) * 64, Tk);
            nra_cp_async_commit();
        }

        // O += P·V_j. The accumulator of n-tile n holds, in lane (g, t), P[g][8n+2t..+1] (elements 0, 1) and
        // P[g+8][8n+2t..+1] (2, 3). The A operand of m16n8k16 for keys 16kk..16kk+15 wants, in the same lane,
        //   a[0] = P[g][16kk+2t..+1]   = tile 2kk,   elements 0,1     a[1] = P[g+8][16kk+2t..+1]   = tile 2kk,   2,3
        //   a[2] = P[g][16kk+8+2t..+1] = tile 2kk+1, elements 0,1     a[3] = P[g+8][16kk+8+2t..+1] = tile 2kk+1, 2,3
        // i.e. the two accumulator tiles of a 16-key step, packed pairwise to bf16, ARE the A fragment: no
        // shuffle, no shared memory.
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
        {
            uint32_t a[4];
            a[0] = nra_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
            a[1] = nra_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
            a[2] = nra_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            a[3] = nra_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < VP; dp++)
            {
                if (dp * 16 >= Dv) continue;
                uint32_t b[4]; // V rows 16kk.. are B stored k-major: transposing ldmatrix
                nra_ldsm_x4<NRA_ORDER_A, true>(b, sV + kk * 16 * SV + dp * 16, SV);
                nr_mma_bf16_16816(oacc[2 * dp], a, b);
                nr_mma_bf16_16816(oacc[2 * dp + 1], a, b + 2);
            }
        }
    }

    nra_cp_async_wait_all(); // nothing may still be in flight into shared memory when the block exits (nKT = 0)

    // Epilogue: O / l (0 for a row that sees no key), lse = ln 2 · max₂ + ln l (−∞ then).
    l0 += __shfl_xor_sync(NR_FULL_MASK, l0, 1);
    l0 += __shfl_xor_sync(NR_FULL_MASK, l0, 2);
    l1 += __shfl_xor_sync(NR_FULL_MASK, l1, 1);
    l1 += __shfl_xor_sync(NR_FULL_MASK, l1, 2);
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    uint16_t* oa = o + ((long long)bh * Tq + qa) * Dv;
    uint16_t* oc = o + ((long long)bh * Tq + qc) * Dv;
#pragma unroll
    for (int dp = 0; dp < VP; dp++)
    {
        if (dp * 16 >= Dv) continue;
#pragma unroll
        for (int h = 0; h < 2; h++)
        {
            int col = dp * 16 + h * 8 + 2 * t;
            const float* c = oacc[2 * dp + h];
            if (qa < Tq) *(uint32_t*)(oa + col) = nra_pack_bf16(c[0] * inv0, c[1] * inv0);
            if (qc < Tq) *(uint32_t*)(oc + col) = nra_pack_bf16(c[2] * inv1, c[3] * inv1);
        }
    }
    if (t == 0)
    {
        if (qa < Tq) lse[(long long)bh * Tq + qa] = l0 > 0.f ? m0 * NRA_LN2 + logf(l0) : -nra_inf();
        if (qc < Tq) lse[(long long)bh * Tq + qc] = l1 > 0.f ? m1 * NRA_LN2 + logf(l1) : -nra_inf();
    }
}

// grid: ceil(Tq/64)·BH blocks of 128 threads; dynamic shared memory 64·(2·(DK+8) + DV+8)·2 bytes.
extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_fwd_d64(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    uint16_t* o, float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scaleLog2, int causal, int group)
{
    nra_forward<64, 64, true>(q, k, v, o, lse, BH, Tq, Tk, Dk, Dv, scaleLog2, causal, group);
}

extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_fwd_d128(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    uint16_t* o, float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scaleLog2, int causal, int group)
{
    nra_forward<128, 128, true>(q, k, v, o, lse, BH, Tq, Tk, Dk, Dv, scaleLog2, causal, group);
}

extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_fwd_d192x128(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    uint16_t* o, float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scaleLog2, int causal, int group)
{
    nra_forward<192, 128, true>(q, k, v, o, lse, BH, Tq, Tk, Dk, Dv, scaleLog2, causal, group);
}

extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_fwd_d256(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    uint16_t* o, float* lse, int BH, int Tq, int Tk, int Dk, int Dv, float scaleLog2, int causal, int group)
{
    nra_forward<256, 256, false>(q, k, v, o, lse, BH, Tq, Tk, Dk, Dv, scaleLog2, causal, group);
}

// ================================================================ backward
// Per query row r of [BH, TqPad] (one warp a row, grid-stride): delta[r] = Σ_d dO[r][d]·O[r][d] (fp32 over the
// bf16 values), lse2[r] = lse·log2 e, or +∞ where lse = −∞ (no visible key) and on the padding rows i ≥ Tq
// (delta 0 there), so that 2^(s − lse2) = 0 exactly; and dqacc[r][0..Dk) = 0 for the real rows.
extern "C" __global__ void nr_attnbf16_bwd_prep(const uint16_t* o, const uint16_t* dO, const float* lse, float* delta,
    float* lse2, float* dqacc, int BH, int Tq, int TqPad, int Dk, int Dv)
{
    const int lane = threadIdx.x & 31;
    const long long rows = (long long)BH * TqPad;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long r = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps)
    {
        const int bh = (int)(r / TqPad), i = (int)(r - (long long)bh * TqPad);
        const bool real = i < Tq;
        float acc = 0.f;
        if (real)
        {
            const long long row = (long long)bh * Tq + i;
            const uint32_t* orow = (const uint32_t*)(o + row * Dv);
            const uint32_t* grow = (const uint32_t*)(dO + row * Dv);
            for (int c = lane; c < (Dv >> 1); c += 32)
            {
                uint32_t x = orow[c], y = grow[c];
                acc += nr_bf16_to_f32((uint16_t)(x & 0xffffu)) * nr_bf16_to_f32((uint16_t)(y & 0xffffu))
                     + nr_bf16_to_f32((uint16_t)(x >> 16)) * nr_bf16_to_f32((uint16_t)(y >> 16));
            }
            float* dq = dqacc + row * Dk;
            for (int c = lane; c < Dk; c += 32) dq[c] = 0.f;
        }
        acc = nr_warp_sum(acc);
        if (lane == 0)
        {
            float l = real ? lse[(long long)bh * Tq + i] : -nra_inf();
            delta[r] = acc;
            lse2[r] = l == -nra_inf() ? nra_inf() : l * NRA_LOG2E;
        }
    }
}

template <int DK, int DV>
static __device__ __forceinline__ void nra_backward(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    const uint16_t* dO, const float* lse2, const float* delta, float* dqacc, uint16_t* dk, uint16_t* dv, int BH, int Tq,
    int Tk, int TqPad, int Dk, int Dv, float scaleLog2, float scale, int causal, int group)
{
    constexpr int SK = DK + 8, SV = DV + 8, SS = 64 + 8;
    constexpr int KS = DK / 16, VS = DV / 16;
    NR_DYNAMIC_SHARED(uint16_t, smem);
    uint16_t* sK = smem;               // [64 keys][SK]
    uint16_t* sV = sK + 64 * SK;       // [64 keys][SV]
    uint16_t* sQ0 = sV + 64 * SV;      // [2][64 queries][SK]
    uint16_t* sdO = sQ0 + 2 * 64 * SK; // [64 queries][SV]
    uint16_t* sdS = sdO + 64 * SV;     // [64 keys][SS]: dSᵀ in bf16
    float* sL = (float*)(sdS + 64 * SS); // [64] lse2 of the query tile
    float* sD = sL + 64;                 // [64] delta of the query tile

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int kvHeads = BH / group;
    const int kt = (int)(blockIdx.x / (unsigned)kvHeads); // lowest key tiles first: the most queries see them
    const int kvh = (int)(blockIdx.x % (unsigned)kvHeads);
    const int k0 = kt * 64, off = Tk - Tq;

    // Query i sees key k0 iff i ≥ k0 − off: earlier query tiles contribute nothing.
    const int nQT = (Tq + 63) >> 6;
    const int it0 = causal ? max(0, k0 - off) >> 6 : 0;
    // Steps: the visited query tiles it0..nQT−1 of query head kvh·group, then of the next head of the group, ...
    // Step s is tile it0 + s % perHead of query head kvh·group + s / perHead.
    const int perHead = max(0, nQT - it0), steps = perHead * group;
#define NRA_STEP_HEAD(s) ((long long)kvh * group + (s) / perHead)
#define NRA_STEP_ROW0(s) ((it0 + (s) % perHead) * 64)

    nra_load_tile64(sK, SK, k + (long long)kvh * Tk * Dk, Dk, k0, Tk);
    nra_load_tile64(sV, SV, v + (long long)kvh * Tk * Dv, Dv, k0, Tk);
    if (steps > 0)
    {
        const long long bh0 = NRA_STEP_HEAD(0);
        const float* lb0 = lse2 + bh0 * TqPad + it0 * 64;
        const float* db0 = delta + bh0 * TqPad + it0 * 64;
        nra_load_tile64(sQ0, SK, q + bh0 * Tq * Dk, Dk, it0 * 64, Tq);
        nra_load_tile64(sdO, SV, dO + bh0 * Tq * Dv, Dv, it0 * 64, Tq);
        if (tid < 32)
            nra_cp_async16(tid < 16 ? sL + 4 * tid : sD + 4 * (tid - 16), tid < 16 ? lb0 + 4 * tid : db0 + 4 * (tid - 16),
                true);
    }
    nra_cp_async_commit();

    float dka[2 * KS][4], dva[2 * VS][4];
#pragma unroll
    for (int n = 0; n < 2 * KS; n++) dka[n][0] = dka[n][1] = dka[n][2] = dka[n][3] = 0.f;
#pragma unroll
    for (int n = 0; n < 2 * VS; n++) dva[n][0] = dva[n][1] = dva[n][2] = dva[n][3] = 0.f;

    const int krow = warp * 16;             // this warp's keys in the tile
    const int ka = k0 + krow + g, kc = ka + 8; // absolute keys of accumulator elements 0,1 and 2,3

    for (int step = 0; step < steps; step++)
    {
        const long long bh = NRA_STEP_HEAD(step);
        const int i0 = NRA_STEP_ROW0(step);
        float* dqb = dqacc + bh * Tq * Dk;
        uint16_t* sQ = sQ0 + (step & 1) * 64 * SK;
        nra_cp_async_wait_all();
        // Q, dO, lse2, delta of this step landed; every warp is done with the last step (its Q buffer, sdS).
        __syncthreads();
        if (step + 1 < steps)
        {
            nra_load_tile64(sQ0 + ((step + 1) & 1) * 64 * SK, SK, q + NRA_STEP_HEAD(step + 1) * Tq * Dk, Dk,
                NRA_STEP_ROW0(step + 1), Tq);
            nra_cp_async_commit();
        }
        const bool mask = k0 + 64 > Tk || (causal && k0 + 63 > i0 + off);

#pragma unroll
        for (int h = 0; h < 2; h++) // queries 32h..32h+31 of the tile
        {
            // Sᵀ[16 keys][32 queries] = K·Qᵀ and dPᵀ = V·dOᵀ: n-tile n covers queries 32h+8n..+7.
            float s[4][4], dp[4][4];
#pragma unroll
            for (int n = 0; n < 4; n++)
                s[n][0] = s[n][1] = s[n][2] = s[n][3] = dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < KS; kk++)
            {
                if (kk * 16 >= Dk) continue;
                uint32_t a[4];
                nra_ldsm_x4<NRA_ORDER_A, false>(a, sK + krow * SK + kk * 16, SK);
#pragma unroll
                for (int np = 0; np < 2; np++)
                {
                    uint32_t b[4];
                    nra_ldsm_x4<NRA_ORDER_B, false>(b, sQ + (h * 32 + np * 16) * SK + kk * 16, SK);
                    nr_mma_bf16_16816(s[2 * np], a, b);
                    nr_mma_bf16_16816(s[2 * np + 1], a, b + 2);
                }
            }
#pragma unroll
            for (int kk = 0; kk < VS; kk++)
            {
                if (kk * 16 >= Dv) continue;
                uint32_t a[4];
                nra_ldsm_x4<NRA_ORDER_A, false>(a, sV + krow * SV + kk * 16, SV);
#pragma unroll
                for (int np = 0; np < 2; np++)
                {
                    uint32_t b[4];
                    nra_ldsm_x4<NRA_ORDER_B, false>(b, sdO + (h * 32 + np * 16) * SV + kk * 16, SV);
                    nr_mma_bf16_16816(dp[2 * np], a, b);
                    nr_mma_bf16_16816(dp[2 * np + 1], a, b + 2);
                }
            }
            // Pᵀ = 2^(s·scale·log2 e − lse2[query]) (0 on padding queries through lse2 = +∞); masked pairs are
            // zeroed after the exponential, never shifted by ±∞. dSᵀ = Pᵀ ⊙ (dPᵀ − Δ[query]), in place of dp.
#pragma unroll
            for (int n = 0; n < 4; n++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                {
                    int col = h * 32 + n * 8 + 2 * t + (e & 1);
                    float p = nra_exp2(s[n][e] * scaleLog2 - sL[col]);
                    if (mask)
                    {
                        int key = e < 2 ? ka : kc;
                        if (key >= Tk || (causal && key > i0 + col + off)) p = 0.f;
                    }
                    s[n][e] = p;
                    dp[n][e] = p * (dp[n][e] - sD[col]);
                }
            // dV += Pᵀ·dO and dK += dSᵀ·Q over the 2 query k-steps of this half. The accumulator tiles 2kq, 2kq+1
            // are the A fragment of k-step kq (same mapping as P in the forward); B = dO / Q rows stored k-major.
#pragma unroll
            for (int kq = 0; kq < 2; kq++)
            {
                uint32_t a[4];
                a[0] = nra_pack_bf16(s[2 * kq][0], s[2 * kq][1]);
                a[1] = nra_pack_bf16(s[2 * kq][2], s[2 * kq][3]);
                a[2] = nra_pack_bf16(s[2 * kq + 1][0], s[2 * kq + 1][1]);
                a[3] = nra_pack_bf16(s[2 * kq + 1][2], s[2 * kq + 1][3]);
                const int qr = h * 32 + kq * 16; // first query (tile row) of this k-step
#pragma unroll
                for (int np = 0; np < VS; np++)
                {
                    if (np * 16 >= Dv) continue;
                    uint32_t b[4];
                    nra_ldsm_x4<NRA_ORDER_A, true>(b, sdO + qr * SV + np * 16, SV);
                    nr_mma_bf16_16816(dva[2 * np], a, b);
                    nr_mma_bf16_16816(dva[2 * np + 1], a, b + 2);
                }
                a[0] = nra_pack_bf16(dp[2 * kq][0], dp[2 * kq][1]);
                a[1] = nra_pack_bf16(dp[2 * kq][2], dp[2 * kq][3]);
                a[2] = nra_pack_bf16(dp[2 * kq + 1][0], dp[2 * kq + 1][1]);
                a[3] = nra_pack_bf16(dp[2 * kq + 1][2], dp[2 * kq + 1][3]);
                // dSᵀ[key][query] to shared, as the same packed pairs (rows g, g+8 of the warp's keys).
                // Stride 72 elements = 36 words: the 8 rows g land 4 banks apart, t picks the bank: conflict-free.
                *(uint32_t*)(sdS + (krow + g) * SS + qr + 2 * t) = a[0];
                *(uint32_t*)(sdS + (krow + g + 8) * SS + qr + 2 * t) = a[1];
                *(uint32_t*)(sdS + (krow + g) * SS + qr + 8 + 2 * t) = a[2];
                *(uint32_t*)(sdS + (krow + g + 8) * SS + qr + 8 + 2 * t) = a[3];
#pragma unroll
                for (int np = 0; np < KS; np++)
                {
                    if (np * 16 >= Dk) continue;
                    uint32_t b[4];
                    nra_ldsm_x4<NRA_ORDER_A, true>(b, sQ + qr * SK + np * 16, SK);
                    nr_mma_bf16_16816(dka[2 * np], a, b);
                    nr_mma_bf16_16816(dka[2 * np + 1], a, b + 2);
                }
            }
        }

        __syncthreads(); // dSᵀ complete; every warp is done with dO, lse2, delta of this tile
        if (step + 1 < steps)
        {
            const long long bhN = NRA_STEP_HEAD(step + 1);
            const int iN = NRA_STEP_ROW0(step + 1);
            const float* lbN = lse2 + bhN * TqPad + iN;
            const float* dbN = delta + bhN * TqPad + iN;
            nra_load_tile64(sdO, SV, dO + bhN * Tq * Dv, Dv, iN, Tq);
            if (tid < 32)
                nra_cp_async16(tid < 16 ? sL + 4 * tid : sD + 4 * (tid - 16),
                    tid < 16 ? lbN + 4 * tid : dbN + 4 * (tid - 16), true);
            nra_cp_async_commit();
        }

        // dQ[16 queries of this warp][Dk] += dS·K over the tile's 64 keys: A[query][key] = dSᵀ stored [key][query]
        // (transposing ldmatrix), B = K stored k-major (transposing ldmatrix); 16 output columns at a time so only
        // 8 accumulators are live beside dK and dV.
        uint32_t af[4][4];
#pragma unroll
        for (int kk = 0; kk < 4; kk++) nra_ldsm_x4<NRA_ORDER_B, true>(af[kk], sdS + kk * 16 * SS + warp * 16, SS);
        const int qa = i0 + warp * 16 + g, qc = qa + 8;
#pragma unroll
        for (int np = 0; np < KS; np++)
        {
            if (np * 16 >= Dk) continue;
            float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
            {
                uint32_t b[4];
                nra_ldsm_x4<NRA_ORDER_A, true>(b, sK + kk * 16 * SK + np * 16, SK);
                nr_mma_bf16_16816(acc[0], af[kk], b);
                nr_mma_bf16_16816(acc[1], af[kk], b + 2);
            }
#pragma unroll
            for (int hh = 0; hh < 2; hh++)
            {
                int col = np * 16 + hh * 8 + 2 * t;
                if (qa < Tq)
                {
                    atomicAdd(dqb + (long long)qa * Dk + col, acc[hh][0]);
                    atomicAdd(dqb + (long long)qa * Dk + col + 1, acc[hh][1]);
                }
                if (qc < Tq)
                {
                    atomicAdd(dqb + (long long)qc * Dk + col, acc[hh][2]);
                    atomicAdd(dqb + (long long)qc * Dk + col + 1, acc[hh][3]);
                }
            }
        }
    }

    nra_cp_async_wait_all(); // K and V are still in flight when no query tile is visited (Tq = 0)

    // dk = scale · Σ dSᵀ·Q, dv = Σ Pᵀ·dO for the warp's keys (zeros when no query sees them).
    uint16_t* dka_row = dk + ((long long)kvh * Tk + ka) * Dk;
    uint16_t* dkc_row = dk + ((long long)kvh * Tk + kc) * Dk;
#pragma unroll
    for (int n = 0; n < 2 * KS; n++)
    {
        if (n * 8 >= Dk) continue;
        int col = n * 8 + 2 * t;
        if (ka < Tk) *(uint32_t*)(dka_row + col) = nra_pack_bf16(dka[n][0] * scale, dka[n][1] * scale);
        if (kc < Tk) *(uint32_t*)(dkc_row + col) = nra_pack_bf16(dka[n][2] * scale, dka[n][3] * scale);
    }
    uint16_t* dva_row = dv + ((long long)kvh * Tk + ka) * Dv;
    uint16_t* dvc_row = dv + ((long long)kvh * Tk + kc) * Dv;
#pragma unroll
    for (int n = 0; n < 2 * VS; n++)
    {
        if (n * 8 >= Dv) continue;
        int col = n * 8 + 2 * t;
        if (ka < Tk) *(uint32_t*)(dva_row + col) = nra_pack_bf16(dva[n][0], dva[n][1]);
        if (kc < Tk) *(uint32_t*)(dvc_row + col) = nra_pack_bf16(dva[n][2], dva[n][3]);
    }
}

#undef NRA_STEP_HEAD
#undef NRA_STEP_ROW0

// grid: ceil(Tk/64)·(BH / group) blocks of 128 threads; dynamic shared memory 64·(3·(DK+8) + 2·(DV+8))·2
// + 64·72·2 + 512 bytes.
extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_bwd_d64(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    const uint16_t* dO, const float* lse2, const float* delta, float* dqacc, uint16_t* dk, uint16_t* dv, int BH, int Tq,
    int Tk, int TqPad, int Dk, int Dv, float scaleLog2, float scale, int causal, int group)
{
    nra_backward<64, 64>(q, k, v, dO, lse2, delta, dqacc, dk, dv, BH, Tq, Tk, TqPad, Dk, Dv, scaleLog2, scale, causal,
        group);
}

extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_bwd_d128(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    const uint16_t* dO, const float* lse2, const float* delta, float* dqacc, uint16_t* dk, uint16_t* dv, int BH, int Tq,
    int Tk, int TqPad, int Dk, int Dv, float scaleLog2, float scale, int causal, int group)
{
    nra_backward<128, 128>(q, k, v, dO, lse2, delta, dqacc, dk, dv, BH, Tq, Tk, TqPad, Dk, Dv, scaleLog2, scale, causal,
        group);
}

extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_bwd_d192x128(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    const uint16_t* dO, const float* lse2, const float* delta, float* dqacc, uint16_t* dk, uint16_t* dv, int BH, int Tq,
    int Tk, int TqPad, int Dk, int Dv, float scaleLog2, float scale, int causal, int group)
{
    nra_backward<192, 128>(q, k, v, dO, lse2, delta, dqacc, dk, dv, BH, Tq, Tk, TqPad, Dk, Dv, scaleLog2, scale, causal,
        group);
}

extern "C" __global__ __launch_bounds__(128) void nr_attnbf16_bwd_d256(const uint16_t* q, const uint16_t* k, const uint16_t* v,
    const uint16_t* dO, const float* lse2, const float* delta, float* dqacc, uint16_t* dk, uint16_t* dv, int BH, int Tq,
    int Tk, int TqPad, int Dk, int Dv, float scaleLog2, float scale, int causal, int group)
{
    nra_backward<256, 256>(q, k, v, dO, lse2, delta, dqacc, dk, dv, BH, Tq, Tk, TqPad, Dk, Dv, scaleLog2, scale, causal,
        group);
}

// dq[i] = bf16(scale · acc[i]), 8 elements a thread and step (n is a multiple of 16: Dk is). Grid-stride.
struct __align__(16) nra_f4 { float x, y, z, w; };
struct __align__(16) nra_u4 { uint32_t x, y, z, w; };
extern "C" __global__ void nr_attnbf16_dq_convert(const float* acc, uint16_t* dq, long long n, float scale)
{
    const long long groups = n >> 3;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < groups; i += (long long)gridDim.x * blockDim.x)
    {
        nra_f4 a = ((const nra_f4*)acc)[2 * i], b = ((const nra_f4*)acc)[2 * i + 1];
        nra_u4 r;
        r.x = nra_pack_bf16(a.x * scale, a.y * scale);
        r.y = nra_pack_bf16(a.z * scale, a.w * scale);
        r.z = nra_pack_bf16(b.x * scale, b.y * scale);
        r.w = nra_pack_bf16(b.z * scale, b.w * scale);
        ((nra_u4*)dq)[i] = r;
    }
}
