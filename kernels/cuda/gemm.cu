// Source: the register-blocked SGEMM of Volkov & Demmel (SC 2008) and CUTLASS's SIMT tiling.
// fp32 GEMM on the CUDA cores (SIMT): C = alpha · op(A) · op(B) + beta · C, every layout, batched, grouped.
//
// Design (the classic register-blocked SGEMM):
//   - A block computes a BM×BN tile of C; each thread a TM×TN micro-tile held in registers, so every value read
//     from shared memory feeds TM or TN FMAs. 128×128 tile, BK = 8, 256 threads, 8×8 per thread: per k, a
//     thread does 4 LDS.128 and 64 FMA (16 FMA per shared load), which keeps the FMA pipes ahead of the
//     shared-memory pipe. A 64×64, BK = 16, 4×4-per-thread variant serves small and skinny shapes (the MoE
//     experts: M ≤ 64, N = 32..256) where 128-wide tiles would be mostly padding and too few blocks would run;
//     the host picks the variant (CudaKernels.Gemm.cs).
//   - Both operands are staged in shared memory k-major (As[k][m], Bs[k][n]), transposed while they are stored
//     when the global layout is k-contiguous, so ONE inner loop serves NN/NT/TN/TT: a thread reads its TM
//     A values and TN B values of step k as float4s. Rows are padded by 4 floats: the transposing stores of a
//     warp then hit 32 distinct banks (for the 128-tile), and float4 alignment is kept.
//   - The micro-tile is split in 4-wide pieces spaced 4·threads apart (rows ty·4 and ty·4 + 64, ...), and a warp
//     covers 4 × 8 threads: the 4 A float4s of a warp are one broadcast wavefront and the 8 B float4s one
//     128-byte wavefront, so the inner loop has no bank conflicts.
//   - Double buffering: the next k-tile is loaded from global into registers while the current one is being
//     multiplied, then stored to the other shared buffer; one __syncthreads per k-tile.
//   - Global loads are 16-byte vectors where the host proved alignment (vecA/vecB), scalar with bounds
//     checks and zero fill at the edges otherwise; a warp reads whole 32-byte sectors in every layout.
//   - Tiles are ordered in groups of 8 tile rows (nr_gemm_tile_of) for L2 reuse; the batch is blockIdx.z
//     (grid-stride past 65535); a grouped launch maps blockIdx.x to (item, tile) through the prefix sums of
//     the items' tile counts, so all experts of an MoE layer run in one launch.
// Expected bottleneck: for large shapes the FMA pipe (~75-85% of fp32 peak is what this structure reaches;
// cuBLAS without TF32 is near 90%); for skinny shapes (small M or K) global-memory bandwidth and latency.
#include "prelude.cuh"
#include "gemm.cuh"

#define NR_GEMM_F32_PAD 4

// Loads this thread's share of an R×BK tile of a matrix into registers: L groups of 4 consecutive elements
// along the matrix's contiguous axis. kcontig: X is stored [rows][K] (k is contiguous: A, or Bᵀ); otherwise
// X is stored [K][rows] (Aᵀ, or B). Elements past the matrix (rows or K) are zero.
template <int R, int BK, int L, int THREADS>
static __device__ __forceinline__ void nr_gemm_f32_fetch(float (&v)[L][4], const float* X, int ld, int rows, int K,
    int r0, int k0, int kcontig, int vec, int tid)
{
#pragma unroll
    for (int i = 0; i < L; i++)
    {
        int g = tid + i * THREADS;
        int r, k, n4;   // the group's first element (row r, depth k); n4: elements left along the contiguous axis
        bool inside;
        if (kcontig)
        {
            r = r0 + g / (BK / 4);
            k = k0 + (g % (BK / 4)) * 4;
            inside = r < rows;
            n4 = K - k;
        }
        else
        {
            k = k0 + g / (R / 4);
            r = r0 + (g % (R / 4)) * 4;
            inside = k < K;
            n4 = rows - r;
        }
        const float* src = kcontig ? X + (long long)r * ld + k : X + (long long)k * ld + r;
        if (vec && inside && n4 >= 4)
        {
            nr_gemm_f4 t = *(const nr_gemm_f4*)src;
            v[i][0] = t.x;
            v[i][1] = t.y;
            v[i][2] = t.z;
            v[i][3] = t.w;
        }
        else
        {
#pragma unroll
            for (int q = 0; q < 4; q++) v[i][q] = (inside && q < n4) ? src[q] : 0.f;
        }
    }
}

// Stores the registers of nr_gemm_f32_fetch into a k-major shared tile S[BK][R + PAD].
template <int R, int BK, int L, int THREADS>
static __device__ __forceinline__ void nr_gemm_f32_stash(const float (&v)[L][4], float* S, int kcontig, int tid)
{
    const int SR = R + NR_GEMM_F32_PAD;
#pragma unroll
    for (int i = 0; i < L; i++)
    {
        int g = tid + i * THREADS;
        if (kcontig)
        {
            int r = g / (BK / 4), k = (g % (BK / 4)) * 4;
#pragma unroll
            for (int q = 0; q < 4; q++) S[(k + q) * SR + r] = v[i][q];
        }
        else
        {
            int k = g / (R / 4), r = (g % (R / 4)) * 4;
            nr_gemm_f4 t;
            t.x = v[i][0];
            t.y = v[i][1];
            t.z = v[i][2];
            t.w = v[i][3];
            *(nr_gemm_f4*)(S + k * SR + r) = t;
        }
    }
}

// One BM×BN tile of C at (m0, n0). A, B, C already point at the batch item (or group item).
// As: [2][BK][BM + PAD], Bs: [2][BK][BN + PAD] shared. Threads: (BM/TM)·(BN/TN).
template <int BM, int BN, int BK, int TM, int TN>
static __device__ __forceinline__ void nr_gemm_f32_block(const float* A, const float* B, float* C, int M, int N, int K,
    const nr_gemm_params& p, int m0, int n0, float* As, float* Bs)
{
    constexpr int TX = BN / TN, TY = BM / TM, THREADS = TX * TY;
    constexpr int SA = BM + NR_GEMM_F32_PAD, SB = BN + NR_GEMM_F32_PAD;
    constexpr int LA = BM * BK / (4 * THREADS), LB = BN * BK / (4 * THREADS);
    constexpr int WARPS_N = TX / 8;
    static_assert(LA * 4 * THREADS == BM * BK && LB * 4 * THREADS == BN * BK, "tile not divisible among the threads");
    static_assert(TX % 8 == 0 && TY % 4 == 0 && TM % 4 == 0 && TN % 4 == 0, "a warp covers 4×8 threads");

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    // Thread (ty, tx) of the TY×TX grid; a warp is a 4×8 patch of it (see the bank-conflict note at the top).
    const int tx = (warp % WARPS_N) * 8 + (lane & 7);
    const int ty = (warp / WARPS_N) * 4 + (lane >> 3);
    const int aK = !p.transA, bK = p.transB;   // A is k-contiguous unless transposed; B only when transposed

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.f;

    const int nk = (K + BK - 1) / BK;
    float ra[LA][4], rb[LB][4];
    if (nk > 0)
    {
        nr_gemm_f32_fetch<BM, BK, LA, THREADS>(ra, A, p.lda, M, K, m0, 0, aK, p.vecA, tid);
        nr_gemm_f32_fetch<BN, BK, LB, THREADS>(rb, B, p.ldb, N, K, n0, 0, bK, p.vecB, tid);
        nr_gemm_f32_stash<BM, BK, LA, THREADS>(ra, As, aK, tid);
        nr_gemm_f32_stash<BN, BK, LB, THREADS>(rb, Bs, bK, tid);
        __syncthreads();
    }
    for (int kt = 0; kt < nk; kt++)
    {
        const float* as = As + (kt & 1) * (BK * SA);
        const float* bs = Bs + (kt & 1) * (BK * SB);
        const bool more = kt + 1 < nk;
        // The next tile's global loads are in flight while this tile is multiplied.
        if (more)
        {
            nr_gemm_f32_fetch<BM, BK, LA, THREADS>(ra, A, p.lda, M, K, m0, (kt + 1) * BK, aK, p.vecA, tid);
            nr_gemm_f32_fetch<BN, BK, LB, THREADS>(rb, B, p.ldb, N, K, n0, (kt + 1) * BK, bK, p.vecB, tid);
        }
#pragma unroll
        for (int k = 0; k < BK; k++)
        {
            float a[TM], b[TN];
#pragma unroll
            for (int c = 0; c < TM / 4; c++)
            {
                nr_gemm_f4 t = *(const nr_gemm_f4*)(as + k * SA + c * 4 * TY + ty * 4);
                a[c * 4 + 0] = t.x;
                a[c * 4 + 1] = t.y;
                a[c * 4 + 2] = t.z;
                a[c * 4 + 3] = t.w;
            }
#pragma unroll
            for (int c = 0; c < TN / 4; c++)
            {
                nr_gemm_f4 t = *(const nr_gemm_f4*)(bs + k * SB + c * 4 * TX + tx * 4);
                b[c * 4 + 0] = t.x;
                b[c * 4 + 1] = t.y;
                b[c * 4 + 2] = t.z;
                b[c * 4 + 3] = t.w;
            }
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        // The other buffer was last read in iteration kt - 1, which every thread finished before the barrier
        // that ended it; the barrier below publishes the new tile before iteration kt + 1 reads it.
        if (more)
        {
            nr_gemm_f32_stash<BM, BK, LA, THREADS>(ra, As + ((kt + 1) & 1) * (BK * SA), aK, tid);
            nr_gemm_f32_stash<BN, BK, LB, THREADS>(rb, Bs + ((kt + 1) & 1) * (BK * SB), bK, tid);
        }
        __syncthreads();
    }

    // Epilogue: 4 consecutive columns at a time (a warp writes 4 rows × 128 contiguous bytes).
    // beta = 0: C is write-only (it may hold NaN).
    const float alpha = p.alpha, beta = p.beta;
#pragma unroll
    for (int i = 0; i < TM; i++)
    {
        int row = m0 + (i / 4) * 4 * TY + ty * 4 + (i % 4);
        if (row >= M) continue;
        float* crow = C + (long long)row * p.ldc;
#pragma unroll
        for (int c = 0; c < TN / 4; c++)
        {
            int col = n0 + c * 4 * TX + tx * 4;
            if (col >= N) continue;
            float o[4];
#pragma unroll
            for (int q = 0; q < 4; q++) o[q] = alpha * acc[i][c * 4 + q];
            if (p.vecC && col + 4 <= N)
            {
                nr_gemm_f4* dst = (nr_gemm_f4*)(crow + col);
                if (beta != 0.f)
                {
                    nr_gemm_f4 old = *dst;
                    o[0] = fmaf(beta, old.x, o[0]);
                    o[1] = fmaf(beta, old.y, o[1]);
                    o[2] = fmaf(beta, old.z, o[2]);
                    o[3] = fmaf(beta, old.w, o[3]);
                }
                nr_gemm_f4 t;
                t.x = o[0];
                t.y = o[1];
                t.z = o[2];
                t.w = o[3];
                *dst = t;
            }
            else
            {
#pragma unroll
                for (int q = 0; q < 4; q++)
                    if (col + q < N) crow[col + q] = beta != 0.f ? fmaf(beta, crow[col + q], o[q]) : o[q];
            }
        }
    }
}

// Plain (batched) launch: grid (tilesM·tilesN, 1, min(batch, 65535)), block (BM/TM)·(BN/TN).
template <int BM, int BN, int BK, int TM, int TN>
static __device__ __forceinline__ void nr_gemm_f32_batched(const nr_gemm_params& p, float* As, float* Bs)
{
    int tilesM = (p.M + BM - 1) / BM, tilesN = (p.N + BN - 1) / BN, tm, tn;
    nr_gemm_tile_of(blockIdx.x, tilesM, tilesN, tm, tn);
    for (int b = blockIdx.z; b < p.batch; b += gridDim.z)
        nr_gemm_f32_block<BM, BN, BK, TM, TN>((const float*)p.A + b * p.strideA, (const float*)p.B + b * p.strideB,
            p.C + b * p.strideC, p.M, p.N, p.K, p, tm * BM, tn * BN, As, Bs);
    // (Reusing the shared buffers for the next batch item is safe: the k-loop ends with a barrier after its
    // last shared read, and the epilogue touches only registers and global memory.)
}

// Grouped launch: grid (total tiles), block as above. items: the compacted descriptor table (M > 0 only).
template <int BM, int BN, int BK, int TM, int TN>
static __device__ __forceinline__ void nr_gemm_f32_grouped(const nr_gemm_group_item* items, int count, const nr_gemm_params& p,
    float* As, float* Bs)
{
    int tile = blockIdx.x;
    nr_gemm_group_item it = items[nr_gemm_group_find(items, count, tile)];
    int tilesN = (p.N + BN - 1) / BN, local = tile - it.tileStart;
    int tm = local / tilesN, tn = local - tm * tilesN;
    nr_gemm_f32_block<BM, BN, BK, TM, TN>((const float*)it.A, (const float*)it.B, it.C, it.M, p.N, it.K, p, tm * BM, tn * BN,
        As, Bs);
}

// The two double-buffered operand tiles, declared as float4s for their 16-byte alignment.
#define NR_GEMM_F32_SMEM(BM, BN, BK)                                                \
    __shared__ nr_gemm_f4 As4[2 * (BK) * ((BM) + NR_GEMM_F32_PAD) / 4];             \
    __shared__ nr_gemm_f4 Bs4[2 * (BK) * ((BN) + NR_GEMM_F32_PAD) / 4];             \
    float* As = (float*)As4;                                                        \
    float* Bs = (float*)Bs4

// 128×128 tiles, BK 8, 256 threads × 8×8: large shapes.
extern "C" __global__ __launch_bounds__(256) void nr_gemm_f32_128x128(nr_gemm_params p)
{
    NR_GEMM_F32_SMEM(128, 128, 8);
    nr_gemm_f32_batched<128, 128, 8, 8, 8>(p, As, Bs);
}

// 64×64 tiles, BK 16, 256 threads × 4×4: small or skinny shapes.
extern "C" __global__ __launch_bounds__(256) void nr_gemm_f32_64x64(nr_gemm_params p)
{
    NR_GEMM_F32_SMEM(64, 64, 16);
    nr_gemm_f32_batched<64, 64, 16, 4, 4>(p, As, Bs);
}

extern "C" __global__ __launch_bounds__(256) void nr_gemm_f32_grouped_128x128(const nr_gemm_group_item* items, int count, nr_gemm_params p)
{
    NR_GEMM_F32_SMEM(128, 128, 8);
    nr_gemm_f32_grouped<128, 128, 8, 8, 8>(items, count, p, As, Bs);
}

extern "C" __global__ __launch_bounds__(256) void nr_gemm_f32_grouped_64x64(const nr_gemm_group_item* items, int count, nr_gemm_params p)
{
    NR_GEMM_F32_SMEM(64, 64, 16);
    nr_gemm_f32_grouped<64, 64, 16, 4, 4>(items, count, p, As, Bs);
}
