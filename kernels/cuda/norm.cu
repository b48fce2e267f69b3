// Source: RMSNorm (arXiv:1910.07467).
// RMSNorm forward and backward.
//
// Design: bandwidth-bound; one row per group (warp for cols ≤ 1024, else block; rows.cuh), grid-stride over
// rows, 16-byte loads when aligned.
//   forward:  pass 1 reads x for Σx² (float partials per thread, tree-reduced: ≤ a few hundred terms per
//             partial, well inside 1e-6 relative), pass 2 re-reads x (L1/L2-resident, just read) and w (one
//             [cols] vector shared by every row: L2-resident) and writes y. DRAM ≈ a copy of x.
//   backward: dx needs the per-row Σ dy·w·x, so again two passes over the row (the second from cache).
//             dw = Σ_rows dy·x·rstd is a reduction across rows: deterministic two-pass, no float atomics.
//             Each group owns a fixed set of columns of its own partial-sum row (in shared memory when
//             groupsPerBlock·cols floats fit in 48 KiB, else a row of the global scratch), accumulates the
//             rows it visits into it (no other thread touches those addresses, so no barrier or atomic), and
//             writes it to partial[slot, :] once at the end. nr_rows_rms_dw_reduce then sums the partial rows
//             in a fixed order (double), column-parallel with 8 row-slices per 32-column tile. The number of
//             slots is fixed by (rows, cols, SM count), so results are bit-reproducible on a given device.
//             The extra traffic is slots·cols floats (slots ≤ SMs·8 warps or 2·SMs blocks) ≪ rows·cols.
#include "prelude.cuh"
#include "rows.cuh"

// x, y: [rows, cols]; w: [cols]; rstd: [rows]
template <int W> static __device__ __forceinline__ void nr_rows_rms_fwd(const float* __restrict__ x, const float* __restrict__ w,
    float* __restrict__ y, float* __restrict__ rstd, int rows, int cols, float eps, int warpMode)
{
    __shared__ float red[32];
    nr_rows_grp g = nr_rows_group(warpMode);
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = x + r * cols;
        float* yr = y + r * cols;
        float ss = 0.f;
        for (int c = g.lane * W; c < cols; c += g.size * W)
        {
            nr_rows_vec<W> v = nr_rows_ld<W>(xr + c);
#pragma unroll
            for (int k = 0; k < W; k++) ss = fmaf(v.v[k], v.v[k], ss);
        }
        ss = nr_rows_sum(ss, red, g.warp);
        float rs = 1.f / sqrtf(ss / (float)cols + eps); // IEEE sqrt and division (not rsqrtf's 2-ulp approximation)
        if (g.lane == 0) rstd[r] = rs;
        for (int c = g.lane * W; c < cols; c += g.size * W)
        {
            nr_rows_vec<W> v = nr_rows_ld<W>(xr + c), wv = nr_rows_ld<W>(w + c);
#pragma unroll
            for (int k = 0; k < W; k++) v.v[k] = v.v[k] * rs * wv.v[k];
            nr_rows_st<W>(yr + c, v);
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_rms_fwd_v4(const float* x, const float* w, float* y, float* rstd, int rows, int cols, float eps, int warpMode)
{
    nr_rows_rms_fwd<4>(x, w, y, rstd, rows, cols, eps, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_rms_fwd_v1(const float* x, const float* w, float* y, float* rstd, int rows, int cols, float eps, int warpMode)
{
    nr_rows_rms_fwd<1>(x, w, y, rstd, rows, cols, eps, warpMode);
}

// x, dy, dx: [rows, cols]; w: [cols]; rstd: [rows]; partial: [slots, cols] with slots = gridDim.x · groups per
// block, every row overwritten. Dynamic shared memory: groups per block · cols floats when useShared, else none.
// dx_c = r·w_c·dy_c − x_c·r³/cols·Σ_k dy_k·w_k·x_k;   partial[slot, c] = Σ_(rows of the slot) dy_c·x_c·r.
template <int W> static __device__ __forceinline__ void nr_rows_rms_bwd(const float* __restrict__ x, const float* __restrict__ w,
    const float* __restrict__ rstd, const float* __restrict__ dy, float* __restrict__ dx, float* __restrict__ partial,
    int rows, int cols, int useShared, int warpMode)
{
    __shared__ float red[32];
    NR_DYNAMIC_SHARED(float, smem);
    nr_rows_grp g = nr_rows_group(warpMode);
    // This group's dw accumulator; thread lane owns columns lane·W + j·size·W of it, in every row it visits.
    float* acc = useShared ? smem + (long long)g.inBlock * cols : partial + (long long)g.slot * cols;
    for (int c = g.lane * W; c < cols; c += g.size * W)
    {
#pragma unroll
        for (int k = 0; k < W; k++) acc[c + k] = 0.f;
    }
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = x + r * cols;
        const float* gr = dy + r * cols;
        float* dr = dx + r * cols;
        float dot = 0.f;
        for (int c = g.lane * W; c < cols; c += g.size * W)
        {
            nr_rows_vec<W> xv = nr_rows_ld<W>(xr + c), gv = nr_rows_ld<W>(gr + c), wv = nr_rows_ld<W>(w + c);
#pragma unroll
            for (int k = 0; k < W; k++) dot = fmaf(gv.v[k] * wv.v[k], xv.v[k], dot);
        }
        dot = nr_rows_sum(dot, red, g.warp);
        float rs = rstd[r];
        float kx = rs * rs * rs / (float)cols * dot;
        for (int c = g.lane * W; c < cols; c += g.size * W)
        {
            nr_rows_vec<W> xv = nr_rows_ld<W>(xr + c), gv = nr_rows_ld<W>(gr + c), wv = nr_rows_ld<W>(w + c);
            nr_rows_vec<W> o;
#pragma unroll
            for (int k = 0; k < W; k++)
            {
                acc[c + k] = fmaf(gv.v[k] * xv.v[k], rs, acc[c + k]);
                o.v[k] = rs * wv.v[k] * gv.v[k] - xv.v[k] * kx;
            }
            nr_rows_st<W>(dr + c, o);
        }
    }
    if (useShared)
    {
        float* out = partial + (long long)g.slot * cols;
        for (int c = g.lane * W; c < cols; c += g.size * W)
        {
#pragma unroll
            for (int k = 0; k < W; k++) out[c + k] = acc[c + k];
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_rms_bwd_v4(const float* x, const float* w, const float* rstd, const float* dy, float* dx,
    float* partial, int rows, int cols, int useShared, int warpMode)
{
    nr_rows_rms_bwd<4>(x, w, rstd, dy, dx, partial, rows, cols, useShared, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_rms_bwd_v1(const float* x, const float* w, const float* rstd, const float* dy, float* dx,
    float* partial, int rows, int cols, int useShared, int warpMode)
{
    nr_rows_rms_bwd<1>(x, w, rstd, dy, dx, partial, rows, cols, useShared, warpMode);
}

// dw[c] = Σ_p partial[p, c] in a fixed order. Block (32, 8): threadIdx.x picks the column of a 32-column tile
// (coalesced 128-byte rows of partial), threadIdx.y one of 8 interleaved slices of p; the 8 slice sums meet in
// shared memory and are added in slice order. partial: [slots, cols]; dw: [cols]; grid.x = ceil(cols / 32).
extern "C" __global__ void nr_rows_rms_dw_reduce(const float* __restrict__ partial, float* __restrict__ dw, int slots, int cols)
{
    __shared__ double part[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    double s = 0.0;
    if (c < cols)
        for (int p = threadIdx.y; p < slots; p += 8) s += (double)partial[(long long)p * cols + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols)
    {
        double t = 0.0;
        for (int i = 0; i < 8; i++) t += part[i][threadIdx.x];
        dw[c] = (float)t;
    }
}
