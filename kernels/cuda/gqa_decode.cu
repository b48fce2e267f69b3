// Source: GQA (arXiv:2305.13245) decode against per-sequence K/V caches, in the layout of HF's cache_utils.py;
// the online softmax of FlashAttention (arXiv:2205.14135).
// One decode step of grouped-query attention for a batch of sequences, each with its own cache length.
//
// Design: one block per (sequence, query head) row, grid-stride over rows. The cache rows in use are walked in
// tiles of blockDim keys: each thread scores one key (q staged in shared memory), the block reduces the tile's
// max and Σexp (online softmax: running max m and sum l, the accumulator rescaled by exp(m_old − m_new)), and
// then each thread owns output columns d (coalesced reads of the value rows) and adds Σ_j p_j v_j[d]. Rows past a
// sequence's length are never read. Decode is bandwidth-bound (each cache row is read once per query head of its
// group); the score loads are strided per thread, which a later version can stage through shared memory.
#include "prelude.cuh"

#define NR_GQA_NEG_INF __uint_as_float(0xff800000u)

// q: [batch, Hq, Dk], k: [batch, Hkv, capacity, Dk], v: [batch, Hkv, capacity, Dv], lengths: [batch]
// → o: [batch, Hq, Dv], lse: [batch, Hq]. Dynamic shared memory: q [Dk] | p [blockDim] | acc [Dv] | red [32].
extern "C" __global__ void nr_gqa_decode_f32(const float* q, const float* k, const float* v, const int* lengths,
    float* o, float* lse, int batch, int Hq, int Hkv, int capacity, int Dk, int Dv, float scale)
{
    NR_DYNAMIC_SHARED(float, smem);
    float* qs = smem;
    float* ps = qs + Dk;
    float* acc = ps + blockDim.x;
    float* red = acc + Dv;
    const int group = Hq / Hkv;
    const long long rows = (long long)batch * Hq;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x)
    {
        const int b = (int)(row / Hq), h = (int)(row - (long long)b * Hq);
        const int len = lengths[b];
        const long long kvHead = (long long)b * Hkv + h / group;
        const float* kb = k + kvHead * capacity * Dk;
        const float* vb = v + kvHead * capacity * Dv;
        for (int d = threadIdx.x; d < Dk; d += blockDim.x) qs[d] = q[row * Dk + d];
        for (int d = threadIdx.x; d < Dv; d += blockDim.x) acc[d] = 0.f;
        __syncthreads();
        float m = NR_GQA_NEG_INF, l = 0.f;
        for (int t0 = 0; t0 < len; t0 += blockDim.x)
        {
            const int j = t0 + threadIdx.x;
            float s = NR_GQA_NEG_INF;
            if (j < len)
            {
                const float* kj = kb + (long long)j * Dk;
                float dot = 0.f;
                for (int d = 0; d < Dk; d++) dot += qs[d] * kj[d];
                s = dot * scale;
            }
            const float tileMax = nr_block_max(s, red);
            const float mNew = fmaxf(m, tileMax);
            const float corr = expf(m - mNew); // 0 on the first tile (m = −∞); the tile has a valid key
            const float p = j < len ? expf(s - mNew) : 0.f;
            ps[threadIdx.x] = p;
            l = l * corr + nr_block_sum(p, red); // ends with a barrier: every p is visible
            const int n = min((int)blockDim.x, len - t0);
            for (int d = threadIdx.x; d < Dv; d += blockDim.x)
            {
                float a = acc[d] * corr;
                for (int jj = 0; jj < n; jj++) a += ps[jj] * vb[(long long)(t0 + jj) * Dv + d];
                acc[d] = a;
            }
            m = mNew;
            __syncthreads(); // ps is rewritten by the next tile
        }
        const float inv = len > 0 ? 1.f / l : 0.f;
        for (int d = threadIdx.x; d < Dv; d += blockDim.x) o[row * Dv + d] = acc[d] * inv;
        if (threadIdx.x == 0) lse[row] = len > 0 ? m + logf(l) : NR_GQA_NEG_INF;
        __syncthreads(); // qs is rewritten by the next row
    }
}
