// Shared device helpers of the row-wise kernels (softmax.cu, norm.cu, rope.cu, loss.cu, fused.cu, grpo.cu).
//
// The row kernels all share one shape: a "group" of threads owns one row at a time and walks the rows
// grid-stride. A group is either one warp (short rows, cols ≤ 1024: 32 lanes already cover the row in ≤ 32
// elements each, and a warp needs no __syncthreads, so 8 rows proceed independently in a 256-thread block) or
// the whole block (long rows up to vocab size: 128..1024 threads, each looping over the row; never a
// per-thread array sized by cols). The host picks the mode (CudaKernels.RowPlan) and passes warpMode; every
// branch on it is uniform across the block.
//
// Rows are read as W-wide vectors (W = 4: 16-byte loads, when every row pointer of the launch is 16-byte
// aligned and cols % 4 == 0; else W = 1): each kernel is a template on W instantiated twice.
#pragma once
#include "prelude.cuh"

// Most negative finite float: the start of an online max. Starting at −FLT_MAX instead of −∞ keeps
// exp(x − m) well defined for leading −∞ entries (exp(−∞) = 0, never exp(−∞ − −∞) = NaN), and a row of only
// −∞ still ends with s = 0, so logsumexp = m + log 0 = −∞ as the reference has it.
#define NR_ROWS_LOWEST (-3.402823466e38f)

// ---------------------------------------------------------------- vectors of W floats
template <int W> struct nr_rows_vec;
template <> struct __align__(16) nr_rows_vec<4> { float v[4]; };
template <> struct __align__(8) nr_rows_vec<2> { float v[2]; };
template <> struct nr_rows_vec<1> { float v[1]; };

template <int W> static __device__ __forceinline__ nr_rows_vec<W> nr_rows_ld(const float* p)
{
    return *reinterpret_cast<const nr_rows_vec<W>*>(p);
}

template <int W> static __device__ __forceinline__ void nr_rows_st(float* p, const nr_rows_vec<W>& v)
{
    *reinterpret_cast<nr_rows_vec<W>*>(p) = v;
}

// ---------------------------------------------------------------- the row group of a thread
struct nr_rows_grp
{
    int lane;        // this thread's index within its group
    int size;        // threads in the group: 32 (warp mode) or blockDim.x
    long long first; // the group's first row
    long long step;  // rows between consecutive rows of the same group (grid stride)
    int slot;        // the group's index in the grid (0 .. gridDim.x · groups per block)
    int inBlock;     // the group's index within its block
    bool warp;
};

static __device__ __forceinline__ nr_rows_grp nr_rows_group(int warpMode)
{
    nr_rows_grp g;
    if (warpMode)
    {
        int perBlock = blockDim.x >> 5;
        g.lane = threadIdx.x & 31;
        g.size = 32;
        g.inBlock = threadIdx.x >> 5;
        g.slot = blockIdx.x * perBlock + g.inBlock;
        g.first = g.slot;
        g.step = (long long)gridDim.x * perBlock;
        g.warp = true;
    }
    else
    {
        g.lane = threadIdx.x;
        g.size = blockDim.x;
        g.inBlock = 0;
        g.slot = blockIdx.x;
        g.first = blockIdx.x;
        g.step = gridDim.x;
        g.warp = false;
    }
    return g;
}

// ---------------------------------------------------------------- group reductions (every thread gets the result)
// red: __shared__ scratch of ≥ 32 floats (block mode only). The block versions end with a barrier, so the
// scratch may be reused by the next reduction or row.
static __device__ __forceinline__ float nr_rows_sum(float v, float* red, bool warp)
{
    return warp ? nr_warp_sum(v) : nr_block_sum(v, red);
}

// Doubles through two 32-bit shuffles (the prelude's shuffles take 32-bit values).
static __device__ __forceinline__ double nr_rows_shfl_xor_d(double v, int laneMask)
{
    union { double d; int i[2]; } u;
    u.d = v;
    u.i[0] = __shfl_xor_sync(NR_FULL_MASK, u.i[0], laneMask);
    u.i[1] = __shfl_xor_sync(NR_FULL_MASK, u.i[1], laneMask);
    return u.d;
}

// Two double sums at once; red: __shared__ scratch of ≥ 64 doubles (block mode only). The butterfly gives
// every lane the bitwise same total (a + b == b + a in IEEE arithmetic).
static __device__ __forceinline__ void nr_rows_sum2_d(double& a, double& b, double* red, bool warp)
{
    for (int o = 16; o > 0; o >>= 1)
    {
        a += nr_rows_shfl_xor_d(a, o);
        b += nr_rows_shfl_xor_d(b, o);
    }
    if (warp) return;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0)
    {
        red[2 * w] = a;
        red[2 * w + 1] = b;
    }
    __syncthreads();
    a = 0.0;
    b = 0.0;
    for (int i = 0; i < warps; i++)
    {
        a += red[2 * i];
        b += red[2 * i + 1];
    }
    __syncthreads();
}

// ---------------------------------------------------------------- online softmax statistics
// (m, s) with s = Σ exp(x − m) over the elements seen and m ≥ their max (NaN propagates through s: a NaN
// element adds exp(NaN); a +∞ element makes m = +∞ and adds exp(∞ − ∞) = NaN, matching the reference, where
// a row with +∞ has a NaN logsumexp).

// Adds W elements: one rescale per vector at most (only when the vector raises the max).
template <int W> static __device__ __forceinline__ void nr_rows_ms_add(float& m, float& s, const float* v)
{
    float lm = v[0];
#pragma unroll
    for (int k = 1; k < W; k++) lm = fmaxf(lm, v[k]);
    if (lm > m)
    {
        s *= expf(m - lm);
        m = lm;
    }
#pragma unroll
    for (int k = 0; k < W; k++) s += expf(v[k] - m);
}

// Merges (m2, s2) into (m, s). Symmetric in its operands bit for bit, so butterfly partners agree.
static __device__ __forceinline__ void nr_rows_ms_merge(float& m, float& s, float m2, float s2)
{
    float mn = (m != m || m2 != m2) ? (m + m2) : fmaxf(m, m2);
    s = s * expf(m - mn) + s2 * expf(m2 - mn);
    m = mn;
}

// Group-wide (m, s); red: __shared__ scratch of ≥ 64 floats (block mode only).
static __device__ __forceinline__ void nr_rows_ms_reduce(float& m, float& s, float* red, bool warp)
{
    for (int o = 16; o > 0; o >>= 1)
    {
        float m2 = __shfl_xor_sync(NR_FULL_MASK, m, o);
        float s2 = __shfl_xor_sync(NR_FULL_MASK, s, o);
        nr_rows_ms_merge(m, s, m2, s2);
    }
    if (warp) return;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0)
    {
        red[2 * w] = m;
        red[2 * w + 1] = s;
    }
    __syncthreads();
    m = red[0];
    s = red[1];
    for (int i = 1; i < warps; i++) nr_rows_ms_merge(m, s, red[2 * i], red[2 * i + 1]);
    __syncthreads();
}

// logsumexp of a row from the merged statistics: −∞ for a row of −∞ (s = 0), NaN where the row has NaN/+∞.
static __device__ __forceinline__ float nr_rows_lse(float m, float s) { return m + logf(s); }

// Statistics (m, s) of the row x·scale (scale > 0) for one group: one read of the row, W-wide.
template <int W> static __device__ __forceinline__ void nr_rows_row_stats(const float* x, int cols, float scale,
    const nr_rows_grp& g, float* red, float& m, float& s)
{
    m = NR_ROWS_LOWEST;
    s = 0.f;
    for (int c = g.lane * W; c < cols; c += g.size * W)
    {
        nr_rows_vec<W> v = nr_rows_ld<W>(x + c);
#pragma unroll
        for (int k = 0; k < W; k++) v.v[k] *= scale;
        nr_rows_ms_add<W>(m, s, v.v);
    }
    nr_rows_ms_reduce(m, s, red, g.warp);
}
