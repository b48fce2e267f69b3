// Device helpers shared by moe.cu, index.cu and topk.cu: the two total orders of the selection ops as
// sortable integer keys, warp-wide reductions and scans on those keys, a 16-byte vector type for the
// row copies, and the "L lanes per row" mapping of the row kernels.
#pragma once
#include "prelude.cuh"

typedef unsigned long long nr_u64;

#define NR_NEG_INF __int_as_float((int)0xff800000u)
#define NR_NAN __int_as_float(0x7fc00000)

// ---------------------------------------------------------------- total orders as integer keys
// Both selection ops rank "numbers descending, equal numbers (-0 = +0, -inf = -inf) by lower index"; they
// differ only in where NaN goes: TopK puts it above every number, the MoE router below every number. A float
// becomes a 32-bit key whose unsigned order is that value order (sign-magnitude flipped to two's-complement
// order, -0 folded onto +0, every NaN onto one extreme), and (key, index) becomes one 64-bit word whose
// unsigned order is the whole total order: the key in the high half, the complement of the index in the low
// half (a lower index gives a larger word). A comparison is then one integer compare, and a warp's best is an
// integer max. Numbers map to [0x007fffff (-inf), 0xff800000 (+inf)]; NaN to 0xffffffff (TopK) or 0 (router).
// Every packed word of a real element has its low half ≥ 2^31 (indices are < 2^31), so the word 0 never
// names an element: it serves as "nothing" and as the padding that sorts after everything.

static __device__ __forceinline__ uint32_t nr_order_bits(float v)
{
    uint32_t u = __float_as_uint(v);
    if (u == 0x80000000u) u = 0u; // -0 ranks with +0
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// TopK's order: NaN above +inf.
static __device__ __forceinline__ uint32_t nr_key_nan_first(float v) { return v != v ? 0xffffffffu : nr_order_bits(v); }

// The router's order: NaN below -inf.
static __device__ __forceinline__ uint32_t nr_key_nan_last(float v) { return v != v ? 0u : nr_order_bits(v); }

static __device__ __forceinline__ nr_u64 nr_pack(uint32_t key, int index)
{
    return ((nr_u64)key << 32) | (nr_u64)(~(uint32_t)index);
}

static __device__ __forceinline__ int nr_unpack_index(nr_u64 w) { return (int)~(uint32_t)w; }

// Max of a 64-bit word over the warp (every lane gets it): two 32-bit shuffles a step, as the shuffles of
// the prelude are 32-bit.
static __device__ __forceinline__ nr_u64 nr_warp_max_u64(nr_u64 v)
{
    for (int o = 16; o > 0; o >>= 1)
    {
        uint32_t hi = __shfl_xor_sync(NR_FULL_MASK, (uint32_t)(v >> 32), o);
        uint32_t lo = __shfl_xor_sync(NR_FULL_MASK, (uint32_t)v, o);
        nr_u64 w = ((nr_u64)hi << 32) | lo;
        v = w > v ? w : v;
    }
    return v;
}

static __device__ __forceinline__ int nr_warp_min_int(int v)
{
    for (int o = 16; o > 0; o >>= 1)
    {
        int w = __shfl_xor_sync(NR_FULL_MASK, v, o);
        v = w < v ? w : v;
    }
    return v;
}

// Inclusive prefix sum over the lanes (lane l gets v_0 + ... + v_l). __shfl_sync from lane − d: lanes below
// d read a wrapped lane and ignore it.
static __device__ __forceinline__ int nr_warp_inclusive_scan(int v)
{
    int lane = threadIdx.x & 31;
    for (int d = 1; d < 32; d <<= 1)
    {
        int w = __shfl_sync(NR_FULL_MASK, v, (lane - d) & 31);
        if (lane >= d) v += w;
    }
    return v;
}

// Lanes below this one, as a mask (for ranks within a ballot).
static __device__ __forceinline__ unsigned nr_lanes_below() { return (1u << (threadIdx.x & 31)) - 1u; }

// ---------------------------------------------------------------- 16-byte vectors for the row copies
// The row kernels (dispatch, combine, index_select) move whole rows; where the row length is a multiple of 4
// and the bases are 16-byte aligned they move float4s (one 16-byte access per lane instead of four). T is
// float or nr_f4; the arithmetic below is what those kernels need.
struct __align__(16) nr_f4
{
    float x, y, z, w;
};

static __device__ __forceinline__ nr_f4 operator*(float a, nr_f4 v)
{
    nr_f4 r;
    r.x = a * v.x;
    r.y = a * v.y;
    r.z = a * v.z;
    r.w = a * v.w;
    return r;
}

static __device__ __forceinline__ nr_f4 nr_fma(float a, nr_f4 v, nr_f4 acc)
{
    acc.x = fmaf(a, v.x, acc.x);
    acc.y = fmaf(a, v.y, acc.y);
    acc.z = fmaf(a, v.z, acc.z);
    acc.w = fmaf(a, v.w, acc.w);
    return acc;
}

static __device__ __forceinline__ float nr_fma(float a, float v, float acc) { return fmaf(a, v, acc); }

static __device__ __forceinline__ float nr_dot_add(float a, float b, float acc) { return fmaf(a, b, acc); }

static __device__ __forceinline__ float nr_dot_add(nr_f4 a, nr_f4 b, float acc)
{
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
    acc = fmaf(a.z, b.z, acc);
    return fmaf(a.w, b.w, acc);
}

static __device__ __forceinline__ void nr_set_zero(float& v) { v = 0.f; }
static __device__ __forceinline__ void nr_set_zero(nr_f4& v) { v.x = v.y = v.z = v.w = 0.f; }
static __device__ __forceinline__ void nr_set_nan(float& v) { v = NR_NAN; }
static __device__ __forceinline__ void nr_set_nan(nr_f4& v) { v.x = v.y = v.z = v.w = NR_NAN; }

// ---------------------------------------------------------------- L lanes per row
// Row kernels run blocks of blockDim.x threads split into groups of L consecutive lanes (L a power of two ≤
// blockDim.x, chosen by the host as the row length rounded up, capped at the block): a long row gets the
// whole block (coalesced along the row), a short one (d = 1, 7) shares a warp with other rows instead of
// leaving lanes idle. Rows are grid-strided.
struct nr_row_map
{
    int lane;       // position within the row group, 0..L-1
    long long row;  // first row of this group
    long long step; // rows between successive rows of this group
};

static __device__ __forceinline__ nr_row_map nr_rows(int L)
{
    nr_row_map m;
    int perBlock = blockDim.x / L;
    m.lane = threadIdx.x & (L - 1);
    m.row = (long long)blockIdx.x * perBlock + threadIdx.x / L;
    m.step = (long long)gridDim.x * perBlock;
    return m;
}

// Few long rows (a decode step: one token, d = 7168) would leave most SMs idle, so the copy kernels may also
// cut every row into `splits` pieces of `span` columns, each piece a "row" of the mapping above. Same layout
// as CudaKernels.RowSplit.
struct nr_row_split
{
    int lanes, splits, span;
};

// Piece v of a row split: its row and its columns [begin, end) of a row of `width`.
struct nr_piece
{
    long long row;
    int begin, end;
};

static __device__ __forceinline__ nr_piece nr_piece_of(long long v, int width, const nr_row_split& rs)
{
    nr_piece p;
    p.row = v / rs.splits;
    p.begin = (int)(v - p.row * rs.splits) * rs.span;
    p.end = min(width, p.begin + rs.span);
    return p;
}
