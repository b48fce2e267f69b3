// Source: torch.sum/mean/max/min along one axis (first index of the extreme).
// Reductions: Reduce (sum / mean / max / min with first-extreme index over the middle axis of
// [outer, dim, inner]), AccumulateStrided (the adjoint of broadcasting: dst[kept index] += Σ src over the
// reduced axes) and SumOfSquares (double, to the host).
//
// Design. Reduce and AccumulateStrided are the same problem once the host has collapsed the layout: a set of
// "kept" axes (one output each combination, q ∈ [0, nout)) and a set of "reduced" axes (d ∈ [0, nred)),
// src at keptOff(q) + redOff(d). One kernel does both, bandwidth-bound, deterministic (no float atomics:
// every output is summed by a fixed tree in a fixed order, so a run reproduces bit for bit):
//  - a block of bx·by threads (≤ 256, by a power of two) owns bx outputs; each of its by "reduction lanes"
//    walks d ≡ lane (mod by) of its range with 4 loads in flight, then the by partials of an output are
//    combined by a shared-memory tree (log2 by barriers);
//  - lane layout follows memory: when the innermost source axis is kept (bias gradients, Reduce with
//    inner > 1) consecutive threads take consecutive outputs (colFast) so a warp reads consecutive floats of
//    one row; when it is reduced (row sums, Reduce with inner = 1) consecutive threads take consecutive d;
//  - too few outputs to fill the GPU (a full sum, a handful of long rows) → the reduced range is split over
//    gridDim.y blocks writing partials [nout, splits], and a second launch combines each output's partials
//    in split order. The split count depends only on the sizes and the SM count, never on timing.
// Max/Min carry (value, index) pairs combined by "NaN first, then strictly better, ties to the lower index",
// a total order, so any tree gives the reference's answer: the first extreme, or the first NaN.
// SumOfSquares: a grid of ≤ 8 blocks per SM, float4 loads squared and summed in double per thread, a
// shared-memory double tree per block, one partial per block summed on the host in block order.
#include "prelude.cuh"
#include "elementwise.cuh"

// Mirrors CudaKernels.RedLayout (C#, Sequential): 2 ints, int[8] ×2, long long[8] ×3 at 72; 264 bytes.
struct NrRedLayout
{
    int keptRank;
    int redRank;
    int keptShape[NR_MAX_RANK];
    int redShape[NR_MAX_RANK];
    long long keptSrc[NR_MAX_RANK];
    long long keptDst[NR_MAX_RANK];
    long long redSrc[NR_MAX_RANK];
};

// Op codes 0..3 are ReduceOp (Sum, Mean, Max, Min); 4 is AccumulateStrided (sum added into dst).
#define NR_R_SUM 0
#define NR_R_MEAN 1
#define NR_R_MAX 2
#define NR_R_MIN 3
#define NR_R_ACC 4

// Offsets of index i over `rank` axes with two stride sets (the unrolled-constant-index pattern of nr_unravel).
template <class I>
static __device__ __forceinline__ void nr_unravel2(I i, int rank, const int* shape, const long long* s1, const long long* s2,
    long long& o1, long long& o2)
{
    o1 = 0;
    o2 = 0;
#pragma unroll
    for (int a = NR_MAX_RANK - 1; a >= 1; a--)
    {
        if (a < rank)
        {
            I n = (I)shape[a];
            I q = i / n;
            long long r = (long long)(i - q * n);
            o1 += r * s1[a];
            o2 += r * s2[a];
            i = q;
        }
    }
    o1 += (long long)i * s1[0];
    o2 += (long long)i * s2[0];
}

template <class I>
static __device__ __forceinline__ long long nr_red_off(const NrRedLayout& L, I d)
{
    if (L.redRank <= 1) return (long long)d * L.redSrc[0]; // the common case: no divide at all
    long long o, unused;
    nr_unravel2<I>(d, L.redRank, L.redShape, L.redSrc, L.redSrc, o, unused);
    return o;
}

// Is (vb, ib) a better max/min candidate than (va, ia)? Index −1 marks "no element yet".
template <int OP>
static __device__ __forceinline__ bool nr_better(float vb, int ib, float va, int ia)
{
    if (ib < 0) return false;
    if (ia < 0) return true;
    bool nb = vb != vb, na = va != va;
    if (na || nb) return (na && nb) ? ib < ia : nb;
    if (OP == NR_R_MAX ? vb > va : vb < va) return true;
    return vb == va && ib < ia;
}

// Writes the final value of output q (at dst offset o).
template <int OP>
static __device__ __forceinline__ void nr_red_finish(float* out, int* arg, long long o, float v, int idx, float divisor)
{
    if (OP == NR_R_SUM) out[o] = v;
    else if (OP == NR_R_MEAN) out[o] = v / divisor;
    else if (OP == NR_R_ACC) out[o] = out[o] + v;
    else
    {
        out[o] = v;
        if (arg) arg[o] = idx;
    }
}

template <int OP, class I>
static __device__ void nr_red_pass1_run(float* sval, int* sidx, const float* x, float* out, int* arg, float* pval, int* parg,
    const NrRedLayout& L, long long nout, long long nred, int bx, int by, int colFast, long long chunk, float divisor)
{
    const bool extreme = OP == NR_R_MAX || OP == NR_R_MIN;
    int tid = threadIdx.x;
    int c = colFast ? tid % bx : tid / by;
    int r = colFast ? tid / bx : tid % by;
    int split = blockIdx.y, splits = gridDim.y;
    long long d0 = (long long)split * chunk, d1 = min(nred, d0 + chunk);
    long long blocks = (nout + bx - 1) / bx;
    for (long long blk = blockIdx.x; blk < blocks; blk += gridDim.x)
    {
        long long q = blk * bx + c;
        bool valid = q < nout;
        long long srcOff = 0, dstOff = 0;
        if (valid) nr_unravel2<I>((I)q, L.keptRank, L.keptShape, L.keptSrc, L.keptDst, srcOff, dstOff);
        const float* xs = x + srcOff;
        float acc = 0.f;
        int best = -1;
        if (valid)
        {
            long long d = d0 + r;
            // 4 independent loads in flight per thread, then combined in increasing d (the reference's order
            // within the lane).
            for (; d + 3LL * by < d1; d += 4LL * by)
            {
                float v0 = xs[nr_red_off<I>(L, (I)d)];
                float v1 = xs[nr_red_off<I>(L, (I)(d + by))];
                float v2 = xs[nr_red_off<I>(L, (I)(d + 2LL * by))];
                float v3 = xs[nr_red_off<I>(L, (I)(d + 3LL * by))];
                if (extreme)
                {
                    if (nr_better<OP>(v0, (int)d, acc, best)) { acc = v0; best = (int)d; }
                    if (nr_better<OP>(v1, (int)(d + by), acc, best)) { acc = v1; best = (int)(d + by); }
                    if (nr_better<OP>(v2, (int)(d + 2LL * by), acc, best)) { acc = v2; best = (int)(d + 2LL * by); }
                    if (nr_better<OP>(v3, (int)(d + 3LL * by), acc, best)) { acc = v3; best = (int)(d + 3LL * by); }
                }
                else acc = ((acc + v0) + v1) + v2 + v3;
            }
            for (; d < d1; d += by)
            {
                float v = xs[nr_red_off<I>(L, (I)d)];
                if (extreme)
                {
                    if (nr_better<OP>(v, (int)d, acc, best)) { acc = v; best = (int)d; }
                }
                else acc += v;
            }
        }
        // Tree over the `by` lanes of each output. Slot of (c, r) is tid itself.
        sval[tid] = acc;
        sidx[tid] = best;
        __syncthreads();
        for (int h = by >> 1; h > 0; h >>= 1)
        {
            if (r < h)
            {
                int other = colFast ? tid + h * bx : tid + h;
                if (extreme)
                {
                    if (nr_better<OP>(sval[other], sidx[other], sval[tid], sidx[tid]))
                    {
                        sval[tid] = sval[other];
                        sidx[tid] = sidx[other];
                    }
                }
                else sval[tid] += sval[other];
            }
            __syncthreads();
        }
        if (r == 0 && valid)
        {
            if (splits == 1) nr_red_finish<OP>(out, arg, dstOff, sval[tid], sidx[tid], divisor);
            else
            {
                pval[q * splits + split] = sval[tid];
                if (extreme) parg[q * splits + split] = sidx[tid];
            }
        }
        // The tree's last barrier already separates these reads from the next iteration's writes of sval/sidx
        // (each thread rewrites only its own slot, which r == 0 threads read here themselves).
    }
}

extern "C" __global__ void nr_red_pass1(int op, const float* x, float* out, int* arg, float* pval, int* parg, NrRedLayout L,
    long long nout, long long nred, int bx, int by, int colFast, long long chunk, float divisor, int wide)
{
    // Declared here, not in the templated body: one pair of arrays for all ten instances (2 KB, not 20 KB).
    __shared__ float sval[256];
    __shared__ int sidx[256];
#define NR_RED_CASE(OPC)                                                                                             \
    case OPC:                                                                                                        \
        if (wide) nr_red_pass1_run<OPC, unsigned long long>(sval, sidx, x, out, arg, pval, parg, L, nout, nred, bx, by, colFast, chunk, divisor); \
        else nr_red_pass1_run<OPC, unsigned>(sval, sidx, x, out, arg, pval, parg, L, nout, nred, bx, by, colFast, chunk, divisor);          \
        break;
    switch (op)
    {
        NR_RED_CASE(NR_R_SUM)
        NR_RED_CASE(NR_R_MEAN)
        NR_RED_CASE(NR_R_MAX)
        NR_RED_CASE(NR_R_MIN)
        default: NR_RED_CASE(NR_R_ACC)
    }
#undef NR_RED_CASE
}

// Second pass of a split reduction: one thread per output combines its `splits` partials in split order.
template <int OP>
static __device__ void nr_red_pass2_run(float* out, int* arg, const float* pval, const int* parg, const NrRedLayout& L,
    long long nout, int splits, float divisor)
{
    const bool extreme = OP == NR_R_MAX || OP == NR_R_MIN;
    for (long long q = nr_gtid(); q < nout; q += nr_gstride())
    {
        long long srcOff, dstOff;
        nr_unravel2<unsigned long long>((unsigned long long)q, L.keptRank, L.keptShape, L.keptSrc, L.keptDst, srcOff, dstOff);
        const float* pv = pval + q * splits;
        float acc = extreme ? pv[0] : 0.f;
        int best = extreme ? parg[q * splits] : -1;
        for (int s = extreme ? 1 : 0; s < splits; s++)
        {
            if (extreme)
            {
                int ib = parg[q * splits + s];
                if (nr_better<OP>(pv[s], ib, acc, best)) { acc = pv[s]; best = ib; }
            }
            else acc += pv[s];
        }
        nr_red_finish<OP>(out, arg, dstOff, acc, best, divisor);
    }
}

extern "C" __global__ void nr_red_pass2(int op, float* out, int* arg, const float* pval, const int* parg, NrRedLayout L,
    long long nout, int splits, float divisor)
{
    switch (op)
    {
    case NR_R_SUM: nr_red_pass2_run<NR_R_SUM>(out, arg, pval, parg, L, nout, splits, divisor); break;
    case NR_R_MEAN: nr_red_pass2_run<NR_R_MEAN>(out, arg, pval, parg, L, nout, splits, divisor); break;
    case NR_R_MAX: nr_red_pass2_run<NR_R_MAX>(out, arg, pval, parg, L, nout, splits, divisor); break;
    case NR_R_MIN: nr_red_pass2_run<NR_R_MIN>(out, arg, pval, parg, L, nout, splits, divisor); break;
    default: nr_red_pass2_run<NR_R_ACC>(out, arg, pval, parg, L, nout, splits, divisor); break;
    }
}

// AccumulateStrided when two kept indices can land on the same dst element (the host found the kept dst
// strides overlapping; autograd's broadcast reductions never do this): one thread per source element and a
// float atomicAdd, the only formulation that is correct for an arbitrary many-to-one map. Not bit-reproducible
// (the order of the atomic adds varies), which is why the tree path above is used whenever it is valid.
template <class I>
static __device__ void nr_red_accumulate_atomic_run(const float* src, float* dst, const NrLayout& L, long long n)
{
    for (long long i = nr_gtid(); i < n; i += nr_gstride())
    {
        long long off[1];
        nr_unravel<1, I>(L, (I)i, off);
        atomicAdd(dst + off[0], src[i]);
    }
}

extern "C" __global__ void nr_red_accumulate_atomic(const float* src, float* dst, NrLayout L, long long n, int wide)
{
    if (wide) nr_red_accumulate_atomic_run<unsigned long long>(src, dst, L, n);
    else nr_red_accumulate_atomic_run<unsigned>(src, dst, L, n);
}

// partial[blockIdx.x] = Σ x[i]² (double) over this block's grid-stride share; blockDim.x must be 256.
// vec: x 16-byte aligned.
extern "C" __global__ void nr_red_sumsq(const float* x, long long n, double* partial, int vec)
{
    __shared__ double sd[256];
    double acc = 0.0;
    long long i = nr_gtid(), st = nr_gstride(), head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = i; j < n4; j += st)
        {
            nr_f4 v = ((const nr_f4*)x)[j];
            // Squares in double are exact (24-bit mantissas), so only the additions round, as in the reference.
            acc += (double)v.x * v.x;
            acc += (double)v.y * v.y;
            acc += (double)v.z * v.z;
            acc += (double)v.w * v.w;
        }
        head = n4 << 2;
    }
    for (long long j = head + i; j < n; j += st) acc += (double)x[j] * x[j];
    int t = threadIdx.x;
    sd[t] = acc;
    __syncthreads();
    for (int h = 128; h > 0; h >>= 1)
    {
        if (t < h) sd[t] += sd[t + h];
        __syncthreads();
    }
    if (t == 0) partial[blockIdx.x] = sd[0];
}
