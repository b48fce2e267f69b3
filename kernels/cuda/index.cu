// Source: torch.index_select / index_add / gather / scatter_add semantics.
// Index-driven copies and accumulations along one axis of an [outer, dim, inner] view: index_select and its
// adjoint index_add (one index per slice: embeddings and their gradient), gather and its adjoint scatter_add
// (one index per element: the router's score gather, top-k's backward).
//
// Design: every op is a row kernel (moe.cuh, "L lanes per row"): a row is one inner-length run, contiguous
// in both the source and the destination, so L lanes of a group walk it coalesced; L is the run length
// rounded up to a power of two (capped at the block), so inner = 1 (the [n, k] gathers) packs 256 rows into a
// block instead of idling 31 lanes of each warp. The (outer, j) of a row costs one division per row, not per
// element. index_select moves float4s when inner is a multiple of 4 and the bases are 16-byte aligned (an
// embedding lookup: hidden = 7168), and cuts rows into pieces when they are too few to fill the SMs (one
// token's lookup in a decode step). All four are bandwidth-bound.
//
// index_add / scatter_add: repeated indices send several source rows to one destination row, so the adds are
// float atomics (red.global.add): coalesced along the row, but the ORDER of the adds into one element is not
// fixed, so the result can differ between runs in the last bits (sums of the same terms in another order). A
// deterministic version needs the indices sorted by destination first (a counting sort over dimDst = the
// vocabulary for the embedding gradient); the callers here (gradients) accept the atomics.
//
// Indices outside [0, dim) cannot be reported without a read-back (the host wrappers range-check them before
// the launch): a select / gather writes NaN for them, an add skips them, so no launch touches memory outside
// its tensors.
#include "prelude.cuh"
#include "moe.cuh"

// y[o, j, :] = x[o, idx[j], :]. x: [outer, dimIn, inner]; idx: [n]; y: [outer, n, inner]; inner in units of T.
template <class T>
static __device__ void nr_index_select(const T* x, const long long* idx, T* y, int outer, int dimIn, int n, int inner, nr_row_split rs)
{
    nr_row_map m = nr_rows(rs.lanes);
    long long pieces = (long long)outer * n * rs.splits;
    for (long long v = m.row; v < pieces; v += m.step)
    {
        nr_piece p = nr_piece_of(v, inner, rs);
        long long r = p.row, o = r / n, j = r - o * n;
        long long id = idx[j];
        T* dst = y + r * inner;
        if ((unsigned long long)id < (unsigned long long)dimIn)
        {
            const T* src = x + (o * dimIn + id) * inner;
            for (int i = p.begin + m.lane; i < p.end; i += rs.lanes) dst[i] = src[i];
        }
        else
            for (int i = p.begin + m.lane; i < p.end; i += rs.lanes) nr_set_nan(dst[i]);
    }
}

extern "C" __global__ void nr_index_select_f32(const float* x, const long long* idx, float* y, int outer, int dimIn, int n, int inner, nr_row_split rs)
{
    nr_index_select<float>(x, idx, y, outer, dimIn, n, inner, rs);
}

extern "C" __global__ void nr_index_select_f32x4(const nr_f4* x, const long long* idx, nr_f4* y, int outer, int dimIn, int n, int inner4, nr_row_split rs)
{
    nr_index_select<nr_f4>(x, idx, y, outer, dimIn, n, inner4, rs);
}

// dst[o, idx[j], :] += src[o, j, :] (atomic). src: [outer, n, inner]; dst: [outer, dimDst, inner].
extern "C" __global__ void nr_index_add_f32(const float* src, const long long* idx, float* dst, int outer, int n, int dimDst, int inner, int L)
{
    nr_row_map m = nr_rows(L);
    long long rows = (long long)outer * n;
    for (long long r = m.row; r < rows; r += m.step)
    {
        long long o = r / n, j = r - o * n;
        long long id = idx[j];
        if ((unsigned long long)id >= (unsigned long long)dimDst) continue;
        const float* s = src + r * inner;
        float* d = dst + (o * dimDst + id) * inner;
        for (int i = m.lane; i < inner; i += L) atomicAdd(d + i, s[i]);
    }
}

// y[o, j, i] = x[o, idx[o, j, i], i]. x: [outer, dimIn, inner]; idx, y: [outer, dimOut, inner].
extern "C" __global__ void nr_index_gather_f32(const float* x, const long long* idx, float* y, int outer, int dimIn, int dimOut, int inner, int L)
{
    nr_row_map m = nr_rows(L);
    long long rows = (long long)outer * dimOut;
    for (long long r = m.row; r < rows; r += m.step)
    {
        long long o = r / dimOut;
        const float* xo = x + o * dimIn * inner;
        const long long* ir = idx + r * inner;
        float* yr = y + r * inner;
        for (int i = m.lane; i < inner; i += L)
        {
            long long id = ir[i];
            yr[i] = (unsigned long long)id < (unsigned long long)dimIn ? xo[id * inner + i] : NR_NAN;
        }
    }
}

// dst[o, idx[o, j, i], i] += src[o, j, i] (atomic). src, idx: [outer, dimSrc, inner]; dst: [outer, dimDst, inner].
extern "C" __global__ void nr_index_scatter_add_f32(const float* src, const long long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner, int L)
{
    nr_row_map m = nr_rows(L);
    long long rows = (long long)outer * dimSrc;
    for (long long r = m.row; r < rows; r += m.step)
    {
        long long o = r / dimSrc;
        float* d = dst + o * dimDst * inner;
        const long long* ir = idx + r * inner;
        const float* s = src + r * inner;
        for (int i = m.lane; i < inner; i += L)
        {
            long long id = ir[i];
            if ((unsigned long long)id < (unsigned long long)dimDst) atomicAdd(d + id * inner + i, s[i]);
        }
    }
}
