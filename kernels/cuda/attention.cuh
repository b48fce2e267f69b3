// Device helpers shared by the fp32 attention kernels (attention.cu) and MLA decode (mla_decode.cu): the
// padded shared-memory tiles and the "rows" forward core, one flash-attention block on CUDA cores.
//
// The core's layout (also the dQ and dK/dV passes of attention.cu): a warp owns R rows (queries, or heads
// for MLA) whose accumulators live in its registers with lane ↔ column (NC chunks of 32 columns); the other
// side (keys) is staged in shared memory 32 at a time with lane ↔ key. A score is then one dot product per
// lane over a key row (16-byte loads, row stride padded so the 8 lanes of each 128-byte phase hit distinct
// bank quads) against a query row read as a broadcast; the probabilities go through a per-warp shared strip
// (broadcast reads again) into the P·V update, where consecutive lanes read consecutive V columns. Nothing
// of size Tq × Tk exists: per row, the running max m, the lane-partial sum l and the accumulators.
#pragma once
#include "prelude.cuh"

#define NR_ATTN_TILE 32

// 16-byte vector for shared-memory loads (no float4 without the CUDA headers).
struct __align__(16) nr_attn_f4
{
    float x, y, z, w;
};

static __device__ __forceinline__ nr_attn_f4 nr_attn_ld4(const float* p) { return *(const nr_attn_f4*)p; }

static __device__ __forceinline__ float nr_attn_dot4(nr_attn_f4 a, nr_attn_f4 b, float acc)
{
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
    acc = fmaf(a.z, b.z, acc);
    return fmaf(a.w, b.w, acc);
}

// Component i (0..3) of a vector; constant-folded inside unrolled loops.
static __device__ __forceinline__ float nr_attn_get(nr_attn_f4 v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// acc[r][c] += Σ_j strip[r][j] · tile[j][lane + 32c] for j < nk (rounded up to 4: the strip and tile entries past nk
// are zero), c < ncols. strip: [R, NR_ATTN_TILE] per warp in shared memory (p or dS); tile: [keys, stride] (V or K).
// Shared by the forward's P·V and the dQ pass's dS·K.
template <int R, int NC>
static __device__ __forceinline__ void nr_attn_strip_times_tile(float (&acc)[R][NC], const float* strip, const float* tile,
    int stride, int nk, int ncols, int lane)
{
    const int nk4 = (nk + 3) & ~3;
    for (int j = 0; j < nk4; j += 4)
    {
        nr_attn_f4 pp[R];
#pragma unroll
        for (int r = 0; r < R; r++) pp[r] = nr_attn_ld4(strip + r * NR_ATTN_TILE + j);
#pragma unroll
        for (int jj = 0; jj < 4; jj++)
        {
            const float* row = tile + (j + jj) * stride + lane;
#pragma unroll
            for (int c = 0; c < NC; c++)
            {
                if (c < ncols)
                {
                    const float x = row[32 * c];
#pragma unroll
                    for (int r = 0; r < R; r++) acc[r][c] = fmaf(nr_attn_get(pp[r], jj), x, acc[r][c]);
                }
            }
        }
    }
}

static __device__ __forceinline__ float nr_attn_neg_inf() { return __uint_as_float(0xff800000u); }

// Row stride (floats) of a shared tile with `cols` columns: rounded up to 32 (a lane ↔ column loop may read
// every column of its last chunk; those are zero) plus 4, so stride / 4 is odd: the 8 lanes of a 16-byte-load
// phase reading 8 different rows land on 8 different bank quads. Mirrored in CudaKernels.Attention.cs.
static __device__ __forceinline__ int nr_attn_stride(int cols) { return ((cols + 31) & ~31) + 4; }

static __device__ __forceinline__ float nr_attn_cvt(const float* p) { return *p; }
static __device__ __forceinline__ float nr_attn_cvt(const uint16_t* p) { return nr_bf16_to_f32(*p); }

// s[r·stride + c] = g[r·ldg + c] for r < rows, c < cols; zero for rows in [rows, rowsTotal) and columns in
// [cols, width). A warp per row, consecutive lanes on consecutive elements (coalesced); bf16 converted here.
template <class T>
static __device__ __forceinline__ void nr_attn_stage(float* s, int stride, int width, const T* g, long long ldg,
    int cols, int rows, int rowsTotal)
{
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int r = warp; r < rowsTotal; r += warps)
    {
        const T* gr = g + (long long)(r < rows ? r : 0) * ldg;
        float* sr = s + r * stride;
        for (int c = lane; c < width; c += 32) sr[c] = (r < rows && c < cols) ? nr_attn_cvt(gr + c) : 0.f;
    }
}

// One block of the rows forward: rows [0, rows) of q (R·WARPS at most) against keys [kBeg, kEnd) of k/v.
struct NrAttnRowsArgs
{
    const float* q;        // [rows, Dk], row stride ldq
    const void* k;         // key j at k + j·ldk (float or bf16 bits, per the template)
    const void* v;         // value j at v + j·ldv; ignored when kvShared (the value is the first Dv columns of the key)
    long long ldq, ldk, ldv;
    int rows, Dk, Dv, kBeg, kEnd;
    int causal, lastBase;  // causal: row r sees key j only when j ≤ lastBase + r
    int kvShared;
    float scale;
    float* o;              // [rows, Dv], row stride ldo; softmax-normalised
    long long ldo;
    float* lse;            // [rows]; −∞ for a row that sees no key (then o = 0)
};

// Shared memory (floats) of nr_attn_rows_forward: Q and K tiles [32][qs], V tile [32][vs] unless kvShared,
// the per-warp probability strips [WARPS][R][32]. Mirrored in CudaKernels.Attention.cs.
template <int R, int WARPS, class T, int NC>
static __device__ __forceinline__ void nr_attn_rows_forward(const NrAttnRowsArgs& a)
{
    NR_DYNAMIC_SHARED(float, smem);
    const int BR = R * WARPS;
    const int qs = nr_attn_stride(a.Dk), vs = nr_attn_stride(a.Dv);
    float* Qs = smem;                 // [BR][qs]
    float* Ks = Qs + BR * qs;         // [32][qs]
    float* Vs = a.kvShared ? Ks : Ks + NR_ATTN_TILE * qs;
    const int vstride = a.kvShared ? qs : vs;
    float* Ps = (a.kvShared ? Ks + NR_ATTN_TILE * qs : Vs + NR_ATTN_TILE * vs); // [WARPS][R][32]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int Dk4 = (a.Dk + 3) & ~3, qw = (a.Dk + 31) & ~31, vw = (a.Dv + 31) & ~31;
    const int ncv = vw >> 5;
    const T* kg = (const T*)a.k;
    const T* vg = (const T*)a.v;
    const float NEG = nr_attn_neg_inf();

    nr_attn_stage<float>(Qs, qs, qw, a.q, a.ldq, a.Dk, a.rows, BR);

    float m[R], l[R], acc[R][NC];
#pragma unroll
    for (int r = 0; r < R; r++)
    {
        m[r] = NEG;
        l[r] = 0.f;
#pragma unroll
        for (int c = 0; c < NC; c++) acc[r][c] = 0.f;
    }

    // Causal: the block's last row sees keys up to lastBase + rows − 1; the tiles past it are never loaded.
    int kStop = a.kEnd;
    if (a.causal) kStop = min(kStop, a.lastBase + a.rows);
    float* strip = Ps + warp * R * NR_ATTN_TILE;
    for (int t0 = a.kBeg; t0 < kStop; t0 += NR_ATTN_TILE)
    {
        const int nk = min(NR_ATTN_TILE, kStop - t0);
        __syncthreads(); // everyone is done with the previous K/V tile (and the Q tile is staged)
        nr_attn_stage<T>(Ks, qs, qw, kg + (long long)t0 * a.ldk, a.ldk, a.Dk, nk, NR_ATTN_TILE);
        if (!a.kvShared) nr_attn_stage<T>(Vs, vs, vw, vg + (long long)t0 * a.ldv, a.ldv, a.Dv, nk, NR_ATTN_TILE);
        __syncthreads();

        // s[r] = q_r · k_lane
        float s[R];
#pragma unroll
        for (int r = 0; r < R; r++) s[r] = 0.f;
        const float* kr = Ks + lane * qs;
        const float* qr = Qs + warp * R * qs;
        for (int d = 0; d < Dk4; d += 4)
        {
            nr_attn_f4 kv = nr_attn_ld4(kr + d);
#pragma unroll
            for (int r = 0; r < R; r++) s[r] = nr_attn_dot4(nr_attn_ld4(qr + r * qs + d), kv, s[r]);
        }

        // Online softmax, per row: the tile max over the warp, rescale what came before, p to the strip.
        const int key = t0 + lane;
#pragma unroll
        for (int r = 0; r < R; r++)
        {
            const int row = warp * R + r;
            const bool ok = lane < nk && (!a.causal || key <= a.lastBase + row);
            const float sc = ok ? s[r] * a.scale : NEG;
            const float mx = nr_warp_max(sc);
            const float mn = mx > m[r] ? mx : m[r];
            const float mu = mn == NEG ? 0.f : mn; // nothing visible yet: keep exp() away from −∞ − −∞
            const float alpha = expf(m[r] - mu);
            const float p = ok ? expf(sc - mu) : 0.f;
            l[r] = l[r] * alpha + p;
            m[r] = mn;
            if (alpha != 1.f)
            {
#pragma unroll
                for (int c = 0; c < NC; c++) acc[r][c] *= alpha;
            }
            strip[r * NR_ATTN_TILE + lane] = p;
        }
        __syncwarp();

        // acc[r][c] += Σ_j p[r][j] · v[j][lane + 32c]; the rows of V past nk are zero, so are their p.
        nr_attn_strip_times_tile<R, NC>(acc, strip, Vs, vstride, nk, ncv, lane);
    }

#pragma unroll
    for (int r = 0; r < R; r++)
    {
        const int row = warp * R + r;
        const float L = nr_warp_sum(l[r]);
        if (row < a.rows)
        {
            const float inv = L == 0.f ? 0.f : 1.f / L; // no visible key: o = 0 (acc is 0), lse = −∞
            float* orow = a.o + (long long)row * a.ldo;
#pragma unroll
            for (int c = 0; c < NC; c++)
            {
                const int d = lane + 32 * c;
                if (c < ncv && d < a.Dv) orow[d] = acc[r][c] * inv;
            }
            if (lane == 0) a.lse[row] = L == 0.f ? NEG : m[r] + logf(L);
        }
    }
}
