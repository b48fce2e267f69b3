// Source: PTX ISA mma.sync.m16n8k16 (bf16) and CUTLASS's warp-tile layout.
// bf16 GEMM on the tensor cores: C = alpha · op(A) · op(B) + beta · C with bf16 operands (raw bits) and fp32
// accumulation and output; every layout, batched.
//
// Design (Ampere-style mma.sync pipeline; it runs unchanged on Hopper):
//   - Block tile BM×BN×32, warps in a WARPS_M × WARPS_N grid, each warp owning a (BM/WARPS_M)×(BN/WARPS_N) tile
//     of C as fp32 accumulators in registers, computed by mma.sync m16n8k16 (nr_mma_bf16_16816). 128×128 with 8
//     warps of 64×32 for large shapes (per k16 a warp issues 6 ldmatrix.x4 for 16 mma: the tensor pipe, not
//     shared memory, limits); 64×64 with 4 warps of 32×32 for small ones (more blocks). The host picks.
//   - Operands are copied global → shared with cp.async (16 bytes, no register round trip; src-size < 16
//     zero-fills the tile edges, so odd M, N, K need no special code) into a STAGES-deep ring: the copies of
//     k-tiles kt+1..kt+STAGES-1 are in flight while tile kt is multiplied. One __syncthreads per k-tile.
//     Operands whose address, leading dimension or batch stride is not 16-byte aligned take a scalar path
//     (bounds-checked 2-byte loads, one 16-byte shared store) into the same ring.
//   - Each operand tile keeps its global layout in shared memory, so every global read is a contiguous
//     16-byte chunk; the fragments come out in mma order through ldmatrix, with .trans where the global
//     layout is mn-contiguous (Aᵀ stored [K][M], B stored [K][N]). All four layouts run one inner loop.
//   - Bank conflicts: a k-contiguous tile ([rows][32] bf16, 64-byte rows) XOR-swizzles its four 16-byte chunks
//     with (row/2) % 4; an mn-contiguous tile ([32][rows]) swizzles its chunks with k % 8. Either way the 8
//     row addresses of every ldmatrix phase and the 8 chunks of every cp.async phase cover all 32 banks.
//   - Epilogue straight from the accumulators: a lane holds column pairs, written as 8-byte stores where C
//     allows (vecC), scalar with bounds checks otherwise; beta = 0 never reads C.
// Expected bottleneck: the mma.sync issue rate. On Hopper cuBLAS uses wgmma (warpgroup MMA from shared memory
// with TMA), which mma.sync cannot match: this structure reaches roughly 50-65% of the H100's dense bf16 peak
// at 4096³. Getting past that needs a wgmma + TMA kernel (sm_90a only).
#include "prelude.cuh"
#include "gemm.cuh"

#define NR_GEMM_BF16_BK 32

// Element offset of (row r, 8-element chunk c) in a k-contiguous tile [rows][32]: chunks XOR-swizzled.
static __device__ __forceinline__ int nr_gemm_bf16_kc(int r, int c) { return r * NR_GEMM_BF16_BK + ((c ^ ((r >> 1) & 3)) << 3); }

// Element offset of (depth k, 8-element chunk c) in an mn-contiguous tile [32][R]: chunks XOR-swizzled.
template <int R> static __device__ __forceinline__ int nr_gemm_bf16_mn(int k, int c) { return k * R + ((c ^ (k & 7)) << 3); }

// Issues this thread's copies of an R×32 operand tile (rows r0.., depth k0..) into shared S.
// kcontig: X stored [rows][K]; otherwise [K][rows]. Past the matrix the tile is zero.
template <int R, int THREADS, bool KCONTIG>
static __device__ __forceinline__ void nr_gemm_bf16_load(uint16_t* S, const uint16_t* X, int ld, int rows, int K, int r0,
    int k0, int vec, int tid)
{
    constexpr int CHUNKS = R * NR_GEMM_BF16_BK / 8;
    static_assert(CHUNKS % THREADS == 0, "tile not divisible among the threads");
#pragma unroll
    for (int i = 0; i < CHUNKS / THREADS; i++)
    {
        int q = tid + i * THREADS;
        int valid, off;
        long long src;
        if (KCONTIG)
        {
            int r = q >> 2, c = q & 3, gr = r0 + r, gk = k0 + c * 8;
            valid = gr < rows ? min(max(K - gk, 0), 8) : 0;
            src = (long long)gr * ld + gk;
            off = nr_gemm_bf16_kc(r, c);
        }
        else
        {
            constexpr int CPR = R / 8;
            int k = q / CPR, c = q % CPR, gk = k0 + k, gr = r0 + c * 8;
            valid = gk < K ? min(max(rows - gr, 0), 8) : 0;
            src = (long long)gk * ld + gr;
            off = nr_gemm_bf16_mn<R>(k, c);
        }
        if (vec)
        {
            nr_gemm_cp_async16(S + off, valid > 0 ? X + src : X, valid * 2);
        }
        else
        {
            uint32_t w[4];
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                uint32_t lo = 2 * j < valid ? (uint32_t)X[src + 2 * j] : 0u;
                uint32_t hi = 2 * j + 1 < valid ? (uint32_t)X[src + 2 * j + 1] : 0u;
                w[j] = lo | (hi << 16);
            }
            nr_gemm_u4 t;
            t.x = w[0];
            t.y = w[1];
            t.z = w[2];
            t.w = w[3];
            *(nr_gemm_u4*)(S + off) = t;
        }
    }
}

// One BM×BN tile of C at (m0, n0). A, B, C point at the batch item. smem: STAGES × (BM + BN) × 32 bf16.
template <int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, bool TA, bool TB>
static __device__ __forceinline__ void nr_gemm_bf16_block(const uint16_t* A, const uint16_t* B, float* C, const nr_gemm_params& p,
    int m0, int n0, uint16_t* smem)
{
    constexpr int BK = NR_GEMM_BF16_BK;
    constexpr int THREADS = WARPS_M * WARPS_N * 32;
    constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N, MT = WTM / 16, NT = WTN / 8;
    constexpr int A_ELEMS = BM * BK, STAGE_ELEMS = (BM + BN) * BK;
    static_assert(WTM % 16 == 0 && WTN % 16 == 0, "a warp tile is made of m16 × n16 pieces");

    const int M = p.M, N = p.N, K = p.K;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int l8 = lane & 7, li = lane >> 3;   // ldmatrix: this lane gives row l8 of matrix li

    float acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

    const int nk = (K + BK - 1) / BK;
    // Prologue: the first STAGES-1 k-tiles in flight. A group is committed even when empty so that
    // "wait until at most STAGES-2 groups are pending" always means "tile kt has landed".
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++)
    {
        if (s < nk)
        {
            uint16_t* st = smem + s * STAGE_ELEMS;
            nr_gemm_bf16_load<BM, THREADS, !TA>(st, A, p.lda, M, K, m0, s * BK, p.vecA, tid);
            nr_gemm_bf16_load<BN, THREADS, TB>(st + A_ELEMS, B, p.ldb, N, K, n0, s * BK, p.vecB, tid);
        }
        nr_gemm_cp_async_commit();
    }

    for (int kt = 0; kt < nk; kt++)
    {
        nr_gemm_cp_async_wait<STAGES - 2>();
        // Publishes tile kt to the block, and every warp is past its reads of tile kt-1, whose stage is refilled now.
        __syncthreads();
        {
            int next = kt + STAGES - 1;
            if (next < nk)
            {
                uint16_t* st = smem + (next % STAGES) * STAGE_ELEMS;
                nr_gemm_bf16_load<BM, THREADS, !TA>(st, A, p.lda, M, K, m0, next * BK, p.vecA, tid);
                nr_gemm_bf16_load<BN, THREADS, TB>(st + A_ELEMS, B, p.ldb, N, K, n0, next * BK, p.vecB, tid);
            }
            nr_gemm_cp_async_commit();
        }
        const uint16_t* As = smem + (kt % STAGES) * STAGE_ELEMS;
        const uint16_t* Bs = As + A_ELEMS;
#pragma unroll
        for (int ks = 0; ks < BK; ks += 16)
        {
            uint32_t a[MT][4], b[NT][2];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
            {
                // Matrices 0..3 = (rows +0, k +0), (rows +8, k +0), (rows +0, k +8), (rows +8, k +8): a[0..3].
                int r = wm * WTM + mt * 16 + (li & 1) * 8;
                if (!TA) nr_gemm_ldmatrix_x4(a[mt], As + nr_gemm_bf16_kc(r + l8, (ks >> 3) + (li >> 1)));
                else nr_gemm_ldmatrix_x4_trans(a[mt], As + nr_gemm_bf16_mn<BM>(ks + (li >> 1) * 8 + l8, r >> 3));
            }
#pragma unroll
            for (int np = 0; np < NT / 2; np++)
            {
                // Matrices 0..3 = (cols +0, k +0), (cols +0, k +8), (cols +8, k +0), (cols +8, k +8):
                // b[2np][0..1], b[2np+1][0..1].
                int c = wn * WTN + np * 16 + (li >> 1) * 8;
                uint32_t t[4];
                if (TB) nr_gemm_ldmatrix_x4(t, Bs + nr_gemm_bf16_kc(c + l8, (ks >> 3) + (li & 1)));
                else nr_gemm_ldmatrix_x4_trans(t, Bs + nr_gemm_bf16_mn<BN>(ks + (li & 1) * 8 + l8, c >> 3));
                b[2 * np][0] = t[0];
                b[2 * np][1] = t[1];
                b[2 * np + 1][0] = t[2];
                b[2 * np + 1][1] = t[3];
            }
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++) nr_mma_bf16_16816(acc[mt][nt], a[mt], b[nt]);
        }
    }
    // Every warp is done with the ring before a next tile (batch item) refills it.
    __syncthreads();

    // Epilogue: lane (g, t) holds C[g][2t..2t+1] and C[g+8][2t..2t+1] of every m16n8 piece.
    const float alpha = p.alpha, beta = p.beta;
    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++)
        {
            int row = m0 + wm * WTM + mt * 16 + h * 8 + g;
            if (row >= M) continue;
            float* crow = C + (long long)row * p.ldc;
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
            {
                int col = n0 + wn * WTN + nt * 8 + 2 * t4;
                float o0 = alpha * acc[mt][nt][2 * h], o1 = alpha * acc[mt][nt][2 * h + 1];
                if (p.vecC && col + 2 <= N)
                {
                    nr_gemm_f2* dst = (nr_gemm_f2*)(crow + col);
                    if (beta != 0.f)
                    {
                        nr_gemm_f2 old = *dst;
                        o0 = fmaf(beta, old.x, o0);
                        o1 = fmaf(beta, old.y, o1);
                    }
                    nr_gemm_f2 v;
                    v.x = o0;
                    v.y = o1;
                    *dst = v;
                }
                else
                {
                    if (col < N) crow[col] = beta != 0.f ? fmaf(beta, crow[col], o0) : o0;
                    if (col + 1 < N) crow[col + 1] = beta != 0.f ? fmaf(beta, crow[col + 1], o1) : o1;
                }
            }
        }
}

// Grid (tilesM·tilesN, 1, min(batch, 65535)); dynamic shared memory STAGES·(BM+BN)·32·2 bytes.
template <int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, bool TA, bool TB>
static __device__ __forceinline__ void nr_gemm_bf16_batched(const nr_gemm_params& p)
{
    NR_DYNAMIC_SHARED(uint16_t, smem);
    int tilesM = (p.M + BM - 1) / BM, tilesN = (p.N + BN - 1) / BN, tm, tn;
    nr_gemm_tile_of(blockIdx.x, tilesM, tilesN, tm, tn);
    for (int b = blockIdx.z; b < p.batch; b += gridDim.z)
        nr_gemm_bf16_block<BM, BN, WARPS_M, WARPS_N, STAGES, TA, TB>((const uint16_t*)p.A + b * p.strideA,
            (const uint16_t*)p.B + b * p.strideB, p.C + b * p.strideC, p, tm * BM, tn * BN, smem);
}

// The kernels are spelled out (not generated by a macro): the emulator build finds them by their text.
// Large: 128×128, 8 warps of 64×32, 4 stages (64 KiB of shared memory; two blocks fit an SM).
extern "C" __global__ __launch_bounds__(256) void nr_gemm_bf16_128x128_nn(nr_gemm_params p) { nr_gemm_bf16_batched<128, 128, 2, 4, 4, false, false>(p); }
extern "C" __global__ __launch_bounds__(256) void nr_gemm_bf16_128x128_nt(nr_gemm_params p) { nr_gemm_bf16_batched<128, 128, 2, 4, 4, false, true>(p); }
extern "C" __global__ __launch_bounds__(256) void nr_gemm_bf16_128x128_tn(nr_gemm_params p) { nr_gemm_bf16_batched<128, 128, 2, 4, 4, true, false>(p); }
extern "C" __global__ __launch_bounds__(256) void nr_gemm_bf16_128x128_tt(nr_gemm_params p) { nr_gemm_bf16_batched<128, 128, 2, 4, 4, true, true>(p); }

// Small: 64×64, 4 warps of 32×32, 3 stages (24 KiB).
extern "C" __global__ __launch_bounds__(128) void nr_gemm_bf16_64x64_nn(nr_gemm_params p) { nr_gemm_bf16_batched<64, 64, 2, 2, 3, false, false>(p); }
extern "C" __global__ __launch_bounds__(128) void nr_gemm_bf16_64x64_nt(nr_gemm_params p) { nr_gemm_bf16_batched<64, 64, 2, 2, 3, false, true>(p); }
extern "C" __global__ __launch_bounds__(128) void nr_gemm_bf16_64x64_tn(nr_gemm_params p) { nr_gemm_bf16_batched<64, 64, 2, 2, 3, true, false>(p); }
extern "C" __global__ __launch_bounds__(128) void nr_gemm_bf16_64x64_tt(nr_gemm_params p) { nr_gemm_bf16_batched<64, 64, 2, 2, 3, true, true>(p); }
