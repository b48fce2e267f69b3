// Source: SwiGLU (arXiv:2002.05202); the log-prob gather of TRL trainer/grpo_trainer.py.
// Fused one-pass kernels: SwiGLU (silu(gate)·up) forward/backward, and the log-softmax + gather of one id
// per row (GRPO's policy log-probs) forward/backward.
//
// SiluMul: elementwise, bandwidth-bound (2 reads + 1 write per element forward, 3 + 2 backward); the fusion
// is the point: silu(gate) never goes to memory. Grid-stride over 16-byte quads when all pointers are 16-byte
// aligned (the last n % 4 elements by the first threads), else over single elements. The sigmoid's exp sits in
// registers; the memory time hides it. Aliasing (y = gate or up; dgate/dup = an input): each thread loads
// every input lane of its quad before storing any output lane of it, and no other thread touches that quad.
//
// LogSoftmaxGather: z = logits·invT; the forward reads each row once (online max/Σexp, rows.cuh) and writes
// two floats per row, never the [rows, V] log-softmax; the backward is one read of logits and one write of
// dlogits per element using the forward's lse. One row per group (warp for V ≤ 1024, else a block),
// grid-stride over rows, 16-byte loads when aligned.
#include "prelude.cuh"
#include "rows.cuh"

static __device__ __forceinline__ float nr_rows_silu_mul(float g, float u) { return g / (1.f + expf(-g)) * u; }

static __device__ __forceinline__ void nr_rows_silu_mul_grad(float g, float u, float d, float& dg, float& du)
{
    float s = 1.f / (1.f + expf(-g));
    float ds = d * s;
    dg = ds * u * fmaf(g, 1.f - s, 1.f);
    du = ds * g;
}

// gate, up, y: [n]
template <int W> static __device__ __forceinline__ void nr_rows_silu_mul_fwd(const float* gate, const float* up, float* y, long long n)
{
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
    long long nv = n / W;
    for (long long i = tid; i < nv; i += stride)
    {
        nr_rows_vec<W> g = nr_rows_ld<W>(gate + i * W), u = nr_rows_ld<W>(up + i * W);
#pragma unroll
        for (int k = 0; k < W; k++) g.v[k] = nr_rows_silu_mul(g.v[k], u.v[k]);
        nr_rows_st<W>(y + i * W, g);
    }
    long long tail = nv * W + tid;
    if (tail < n) y[tail] = nr_rows_silu_mul(gate[tail], up[tail]);
}

extern "C" __global__ void nr_rows_silu_mul_v4(const float* gate, const float* up, float* y, long long n)
{
    nr_rows_silu_mul_fwd<4>(gate, up, y, n);
}

extern "C" __global__ void nr_rows_silu_mul_v1(const float* gate, const float* up, float* y, long long n)
{
    nr_rows_silu_mul_fwd<1>(gate, up, y, n);
}

// gate, up, dy, dgate, dup: [n]
template <int W> static __device__ __forceinline__ void nr_rows_silu_mul_bwd(const float* gate, const float* up, const float* dy,
    float* dgate, float* dup, long long n)
{
    long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
    long long nv = n / W;
    for (long long i = tid; i < nv; i += stride)
    {
        nr_rows_vec<W> g = nr_rows_ld<W>(gate + i * W), u = nr_rows_ld<W>(up + i * W), d = nr_rows_ld<W>(dy + i * W);
        nr_rows_vec<W> dg, du;
#pragma unroll
        for (int k = 0; k < W; k++) nr_rows_silu_mul_grad(g.v[k], u.v[k], d.v[k], dg.v[k], du.v[k]);
        nr_rows_st<W>(dgate + i * W, dg);
        nr_rows_st<W>(dup + i * W, du);
    }
    long long tail = nv * W + tid;
    if (tail < n)
    {
        float dg, du;
        nr_rows_silu_mul_grad(gate[tail], up[tail], dy[tail], dg, du);
        dgate[tail] = dg;
        dup[tail] = du;
    }
}

extern "C" __global__ void nr_rows_silu_mul_bwd_v4(const float* gate, const float* up, const float* dy, float* dgate, float* dup, long long n)
{
    nr_rows_silu_mul_bwd<4>(gate, up, dy, dgate, dup, n);
}

extern "C" __global__ void nr_rows_silu_mul_bwd_v1(const float* gate, const float* up, const float* dy, float* dgate, float* dup, long long n)
{
    nr_rows_silu_mul_bwd<1>(gate, up, dy, dgate, dup, n);
}

// logits: [rows, V]; ids, logp, lse: [rows]. lse = logsumexp(logits·invT), logp = logits[id]·invT − lse.
template <int W> static __device__ __forceinline__ void nr_rows_lsg_fwd(const float* __restrict__ logits, const long long* __restrict__ ids,
    float* __restrict__ logp, float* __restrict__ lse, int rows, int V, float invT, int warpMode)
{
    __shared__ float red[64];
    nr_rows_grp g = nr_rows_group(warpMode);
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = logits + r * V;
        float m, s;
        nr_rows_row_stats<W>(xr, V, invT, g, red, m, s);
        if (g.lane == 0)
        {
            float l = nr_rows_lse(m, s);
            lse[r] = l;
            logp[r] = xr[ids[r]] * invT - l;
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_lsg_fwd_v4(const float* logits, const long long* ids, float* logp, float* lse, int rows, int V,
    float invT, int warpMode)
{
    nr_rows_lsg_fwd<4>(logits, ids, logp, lse, rows, V, invT, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_lsg_fwd_v1(const float* logits, const long long* ids, float* logp, float* lse, int rows, int V,
    float invT, int warpMode)
{
    nr_rows_lsg_fwd<1>(logits, ids, logp, lse, rows, V, invT, warpMode);
}

// dlogits[r, c] = invT·dlogp[r]·([c = id] − exp(logits[r, c]·invT − lse[r])).
template <int W> static __device__ __forceinline__ void nr_rows_lsg_bwd(const float* __restrict__ logits, const long long* __restrict__ ids,
    const float* __restrict__ lse, const float* __restrict__ dlogp, float* __restrict__ dlogits, int rows, int V, float invT, int warpMode)
{
    nr_rows_grp g = nr_rows_group(warpMode);
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = logits + r * V;
        float* dr = dlogits + r * V;
        long long id = ids[r];
        float l = lse[r], gr = dlogp[r] * invT;
        for (int c = g.lane * W; c < V; c += g.size * W)
        {
            nr_rows_vec<W> v = nr_rows_ld<W>(xr + c);
#pragma unroll
            for (int k = 0; k < W; k++) v.v[k] = ((c + k == id ? 1.f : 0.f) - expf(fmaf(v.v[k], invT, -l))) * gr;
            nr_rows_st<W>(dr + c, v);
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_lsg_bwd_v4(const float* logits, const long long* ids, const float* lse, const float* dlogp,
    float* dlogits, int rows, int V, float invT, int warpMode)
{
    nr_rows_lsg_bwd<4>(logits, ids, lse, dlogp, dlogits, rows, V, invT, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_lsg_bwd_v1(const float* logits, const long long* ids, const float* lse, const float* dlogp,
    float* dlogits, int rows, int V, float invT, int warpMode)
{
    nr_rows_lsg_bwd<1>(logits, ids, lse, dlogp, dlogits, rows, V, invT, warpMode);
}
