// Source: torch.nn.functional.cross_entropy (mean over rows, log-sum-exp form).
// Cross-entropy over vocabulary rows: the forward (loss and logsumexp per row) and the backward.
//
// Design: the forward must see a whole row to know its logsumexp but writes only two floats per row, so it
// is a single read of the row: the online (max, Σexp) statistics (rows.cuh) replace the usual max pass +
// sum pass, halving the traffic of vocab-sized rows (129280 columns = 505 KiB, which no cache keeps for a
// second pass across a grid of rows). One row per group (warp for V ≤ 1024, else a block of up to 1024
// threads looping over the row), grid-stride over rows, 16-byte loads when aligned. The backward uses the
// forward's lse, so it is one read of logits and one write of dlogits per element (a copy's traffic), with
// ignored rows written as zeros without reading the logits.
#include "prelude.cuh"
#include "rows.cuh"

// logits: [rows, V]; targets, loss, lse: [rows]. loss = lse − logits[target], 0 where target == ignoreIndex.
template <int W> static __device__ __forceinline__ void nr_rows_ce_fwd(const float* __restrict__ logits, const long long* __restrict__ targets,
    float* __restrict__ loss, float* __restrict__ lse, int rows, int V, long long ignoreIndex, int warpMode)
{
    __shared__ float red[64];
    nr_rows_grp g = nr_rows_group(warpMode);
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = logits + r * V;
        float m, s;
        nr_rows_row_stats<W>(xr, V, 1.f, g, red, m, s);
        if (g.lane == 0)
        {
            float l = nr_rows_lse(m, s);
            long long t = targets[r];
            lse[r] = l;
            loss[r] = t == ignoreIndex ? 0.f : l - xr[t];
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_ce_fwd_v4(const float* logits, const long long* targets, float* loss, float* lse,
    int rows, int V, long long ignoreIndex, int warpMode)
{
    nr_rows_ce_fwd<4>(logits, targets, loss, lse, rows, V, ignoreIndex, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_ce_fwd_v1(const float* logits, const long long* targets, float* loss, float* lse,
    int rows, int V, long long ignoreIndex, int warpMode)
{
    nr_rows_ce_fwd<1>(logits, targets, loss, lse, rows, V, ignoreIndex, warpMode);
}

// dlogits[r] = (exp(logits[r] − lse[r]) − onehot(targets[r])) · dloss[r]; zero rows where ignored.
template <int W> static __device__ __forceinline__ void nr_rows_ce_bwd(const float* __restrict__ logits, const float* __restrict__ lse,
    const long long* __restrict__ targets, const float* __restrict__ dloss, float* __restrict__ dlogits, int rows, int V,
    long long ignoreIndex, int warpMode)
{
    nr_rows_grp g = nr_rows_group(warpMode);
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = logits + r * V;
        float* dr = dlogits + r * V;
        long long t = targets[r];
        if (t == ignoreIndex)
        {
            nr_rows_vec<W> z;
#pragma unroll
            for (int k = 0; k < W; k++) z.v[k] = 0.f;
            for (int c = g.lane * W; c < V; c += g.size * W) nr_rows_st<W>(dr + c, z);
            continue;
        }
        float l = lse[r], gr = dloss[r];
        for (int c = g.lane * W; c < V; c += g.size * W)
        {
            nr_rows_vec<W> v = nr_rows_ld<W>(xr + c);
#pragma unroll
            for (int k = 0; k < W; k++) v.v[k] = (expf(v.v[k] - l) - (c + k == t ? 1.f : 0.f)) * gr;
            nr_rows_st<W>(dr + c, v);
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_ce_bwd_v4(const float* logits, const float* lse, const long long* targets, const float* dloss,
    float* dlogits, int rows, int V, long long ignoreIndex, int warpMode)
{
    nr_rows_ce_bwd<4>(logits, lse, targets, dloss, dlogits, rows, V, ignoreIndex, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_ce_bwd_v1(const float* logits, const float* lse, const long long* targets, const float* dloss,
    float* dlogits, int rows, int V, long long ignoreIndex, int warpMode)
{
    nr_rows_ce_bwd<1>(logits, lse, targets, dloss, dlogits, rows, V, ignoreIndex, warpMode);
}
