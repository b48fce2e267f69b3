// Source: RoPE (arXiv:2104.09864) on interleaved pairs, as DeepSeek-V3's official inference/model.py.
// Rotary embedding on interleaved pairs (x[2i], x[2i+1]) of the last axis.
//
// Design: purely elementwise over the outer·T·mid·D/2 pairs, bandwidth-bound: read x, write y (a copy's
// traffic); cos/sin ([T, D/2], tiny next to x because mid heads share them) stay L2/L1-resident. One pair
// per thread per step, grid-stride, a flat pair index so consecutive lanes touch consecutive 8-byte pairs
// (fully coalesced 256-byte warp accesses, and consecutive i read consecutive cos/sin). When x and y are
// 8-byte aligned a pair is one 8-byte load/store (W = 2), else two 4-byte ones. The 64-bit index
// divisions cost a few dozen integer instructions per pair, which the memory time hides.
// y may alias x: each thread reads its pair before writing it, and no other thread touches it.
#include "prelude.cuh"
#include "rows.cuh"

// x, y: [outer, T, mid, D]; cos, sin: [T, D/2]. pairs = outer·T·mid·D/2; half = D/2.
template <int W> static __device__ __forceinline__ void nr_rows_rope(const float* x, const float* cos_, const float* sin_, float* y,
    long long pairs, int T, int mid, int half, int inverse)
{
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (long long)gridDim.x * blockDim.x)
    {
        long long row = p / half;            // index over [outer, T, mid]
        int i = (int)(p - row * half);
        int t = (int)((row / mid) % T);
        float c = cos_[(long long)t * half + i];
        float s = sin_[(long long)t * half + i];
        if (inverse) s = -s;
        float x0, x1;
        if (W == 2)
        {
            nr_rows_vec<2> v = nr_rows_ld<2>(x + 2 * p);
            x0 = v.v[0];
            x1 = v.v[1];
            nr_rows_vec<2> o;
            o.v[0] = x0 * c - x1 * s;
            o.v[1] = x0 * s + x1 * c;
            nr_rows_st<2>(y + 2 * p, o);
        }
        else
        {
            x0 = x[2 * p];
            x1 = x[2 * p + 1];
            y[2 * p] = x0 * c - x1 * s;
            y[2 * p + 1] = x0 * s + x1 * c;
        }
    }
}

extern "C" __global__ void nr_rows_rope_v2(const float* x, const float* cos_, const float* sin_, float* y,
    long long pairs, int T, int mid, int half, int inverse)
{
    nr_rows_rope<2>(x, cos_, sin_, y, pairs, T, mid, half, inverse);
}

extern "C" __global__ void nr_rows_rope_v1(const float* x, const float* cos_, const float* sin_, float* y,
    long long pairs, int T, int mid, int half, int inverse)
{
    nr_rows_rope<1>(x, cos_, sin_, y, pairs, T, mid, half, inverse);
}
