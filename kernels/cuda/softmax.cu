// Source: online softmax normaliser (arXiv:1805.02867).
// Softmax and log-softmax along the last axis, and their backward.
//
// Design: bandwidth-bound (a few flops per element), so the goal is to touch each element as few times as
// possible with full-width coalesced loads. One row per group (a warp for cols ≤ 1024, else a block of
// 128..1024 threads; see rows.cuh), grid-stride over rows, 16-byte loads when aligned.
//   forward:  pass 1 reads the row once for the online (max, Σexp) statistics (no separate max pass); pass 2
//             re-reads it (a row ≤ 1024 floats per warp, or one row per block, was read microseconds before:
//             L1/L2 hits for every row size that fits there) and writes y. DRAM traffic ≈ read + write = a
//             copy for rows that stay cached; vocab-sized rows (≥ 100k columns) pay one extra read.
//   backward: pass 1 reduces Σy and Σdy·y (softmax) or Σdy (log-softmax) in double, pass 2 writes dx.
//             The softmax form dx = y ⊙ (dy·Σy − Σdy⊙y) is evaluated per element in double, as the reference
//             does: for a near one-hot row the dominant term dy_i·(Σy − y_i) cancels catastrophically in
//             float. Doubles cost nothing here (bandwidth-bound even at 1/64 fp64 rate).
// y may alias x in the forward: every read of a row (pass 1, then each element in pass 2 before its own
// write) happens before the write of that element by the same thread, and pass 1 ends with a group reduction.
#include "prelude.cuh"
#include "rows.cuh"

// x, y: [rows, cols]
template <int W> static __device__ __forceinline__ void nr_rows_softmax_fwd(const float* x, float* y, int rows, int cols,
    int log, int warpMode)
{
    __shared__ float red[64];
    nr_rows_grp g = nr_rows_group(warpMode);
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = x + r * cols;
        float* yr = y + r * cols;
        float m, s;
        nr_rows_row_stats<W>(xr, cols, 1.f, g, red, m, s);
        if (log)
        {
            // y = (x − m) − log s: x − m first (exact near the max), as the reference's z − log Σ. A row of −∞
            // gives −∞ − (−∞) = NaN, as the reference.
            float ls = logf(s);
            for (int c = g.lane * W; c < cols; c += g.size * W)
            {
                nr_rows_vec<W> v = nr_rows_ld<W>(xr + c);
#pragma unroll
                for (int k = 0; k < W; k++) v.v[k] = (v.v[k] - m) - ls;
                nr_rows_st<W>(yr + c, v);
            }
        }
        else
        {
            float inv = 1.f / s; // s = 0 (row of −∞) gives 0·∞ = NaN, as the reference's 0/0
            for (int c = g.lane * W; c < cols; c += g.size * W)
            {
                nr_rows_vec<W> v = nr_rows_ld<W>(xr + c);
#pragma unroll
                for (int k = 0; k < W; k++) v.v[k] = expf(v.v[k] - m) * inv;
                nr_rows_st<W>(yr + c, v);
            }
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_softmax_fwd_v4(const float* x, float* y, int rows, int cols, int log, int warpMode)
{
    nr_rows_softmax_fwd<4>(x, y, rows, cols, log, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_softmax_fwd_v1(const float* x, float* y, int rows, int cols, int log, int warpMode)
{
    nr_rows_softmax_fwd<1>(x, y, rows, cols, log, warpMode);
}

// y, dy, dx: [rows, cols]. softmax: dx = y ⊙ (dy·Σy − Σdy⊙y); log-softmax: dx = dy − exp(y)·Σdy.
template <int W> static __device__ __forceinline__ void nr_rows_softmax_bwd(const float* y, const float* dy, float* dx,
    int rows, int cols, int log, int warpMode)
{
    __shared__ double red[64];
    nr_rows_grp g = nr_rows_group(warpMode);
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* yr = y + r * cols;
        const float* gr = dy + r * cols;
        float* dr = dx + r * cols;
        double a = 0.0, b = 0.0; // softmax: Σy, Σdy·y; log-softmax: Σdy, unused
        for (int c = g.lane * W; c < cols; c += g.size * W)
        {
            nr_rows_vec<W> gv = nr_rows_ld<W>(gr + c);
            if (log)
            {
#pragma unroll
                for (int k = 0; k < W; k++) a += (double)gv.v[k];
            }
            else
            {
                nr_rows_vec<W> yv = nr_rows_ld<W>(yr + c);
#pragma unroll
                for (int k = 0; k < W; k++)
                {
                    a += (double)yv.v[k];
                    b += (double)gv.v[k] * (double)yv.v[k];
                }
            }
        }
        nr_rows_sum2_d(a, b, red, g.warp);
        if (log)
        {
            float sum = (float)a;
            for (int c = g.lane * W; c < cols; c += g.size * W)
            {
                nr_rows_vec<W> yv = nr_rows_ld<W>(yr + c), gv = nr_rows_ld<W>(gr + c);
#pragma unroll
                for (int k = 0; k < W; k++) gv.v[k] = gv.v[k] - expf(yv.v[k]) * sum;
                nr_rows_st<W>(dr + c, gv);
            }
        }
        else
        {
            for (int c = g.lane * W; c < cols; c += g.size * W)
            {
                nr_rows_vec<W> yv = nr_rows_ld<W>(yr + c), gv = nr_rows_ld<W>(gr + c);
#pragma unroll
                for (int k = 0; k < W; k++) gv.v[k] = (float)((double)yv.v[k] * ((double)gv.v[k] * a - b));
                nr_rows_st<W>(dr + c, gv);
            }
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_softmax_bwd_v4(const float* y, const float* dy, float* dx, int rows, int cols, int log, int warpMode)
{
    nr_rows_softmax_bwd<4>(y, dy, dx, rows, cols, log, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_softmax_bwd_v1(const float* y, const float* dy, float* dx, int rows, int cols, int log, int warpMode)
{
    nr_rows_softmax_bwd<1>(y, dy, dx, rows, cols, log, warpMode);
}
