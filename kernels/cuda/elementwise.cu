// Source: the broadcasting rules of NumPy/PyTorch.
// Memory and elementwise kernels: fill, strided copy (general and tiled transpose), unary ops and their
// derivatives, broadcasting binary ops and where.
//
// Design: every kernel here does O(1) arithmetic per element and is bound by DRAM bandwidth, so what matters
// is (1) bytes moved, (2) coalescing, (3) enough loads in flight. Hence:
//  - grid-stride loops over a grid sized by the host (GridFor: ≤ 32 blocks per SM of 256 threads), so one
//    launch covers any n and every thread issues several independent loads;
//  - flat fast paths (contiguous or scalar-broadcast operands, the common case: activations, residual adds,
//    scaling) move 16 bytes per thread per access (nr_f4) when the host found every pointer 16-byte aligned;
//    the < 4 leftover elements go through a scalar tail;
//  - general broadcasting goes through NrLayout (collapsed on the host, so a bias add is rank 2 and a
//    contiguous tensor rank 1): one integer divide per collapsed axis per element, 32-bit when the element
//    count allows. Output index = flat index, so the writes stay coalesced whatever the input strides;
//  - a copy whose source and destination are contiguous along different axes (a transpose) is staged
//    through a padded 32×33 shared-memory tile, so both the reads and the writes are coalesced;
//  - op codes are uniform runtime parameters dispatched once per launch to a templated loop (one branch
//    per kernel, not per element).
#include "prelude.cuh"
#include "elementwise.cuh"

// y[i] = value, grid-stride.
extern "C" __global__ void nr_fill_f32(float* y, long long n, float value)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = value;
}

// ---------------------------------------------------------------- strided copy

template <class T, class I>
static __device__ __forceinline__ void nr_copy_run(const T* src, T* dst, const NrLayout& L, long long total)
{
    for (long long i = nr_gtid(); i < total; i += nr_gstride())
    {
        long long off[2];
        nr_unravel<2, I>(L, (I)i, off);
        dst[off[1]] = src[off[0]];
    }
}

template <class T>
static __device__ __forceinline__ void nr_copy_dispatch(const void* src, void* dst, const NrLayout& L, long long total, int wide)
{
    if (wide) nr_copy_run<T, unsigned long long>((const T*)src, (T*)dst, L, total);
    else nr_copy_run<T, unsigned>((const T*)src, (T*)dst, L, total);
}

// dst[Σ idx·stride[1]] = src[Σ idx·stride[0]] over the collapsed shape (elements of elementSize bytes).
// One thread per element; the flat order follows the destination's last axis when the host could arrange it.
extern "C" __global__ void nr_ew_strided_copy(const void* src, void* dst, NrLayout L, long long total, int elementSize, int wide)
{
    switch (elementSize)
    {
    case 1: nr_copy_dispatch<unsigned char>(src, dst, L, total, wide); break;
    case 2: nr_copy_dispatch<uint16_t>(src, dst, L, total, wide); break;
    case 4: nr_copy_dispatch<uint32_t>(src, dst, L, total, wide); break;
    default: nr_copy_dispatch<uint64_t>(src, dst, L, total, wide); break;
    }
}

// A copy where the source is contiguous along axis A and the destination along axis B (a transpose of the
// [A, B] plane, batched over the other axes, whose offsets come from `batch`: stride[0] src, stride[1] dst).
// Block 32×8: a 32×32 tile is read with lanes along A (coalesced in the source), parked in shared memory
// with one padding column (lanes then read a column of it without bank conflicts), and written with lanes
// along B (coalesced in the destination).
#define NR_TILE 32
template <class T>
static __device__ void nr_transpose_run(T (*tile)[NR_TILE + 1], const T* src, T* dst, const NrLayout& batch, long long nBatch,
    int nA, int nB, long long sA, long long sB, long long dA, long long dB)
{
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    long long tilesA = (nA + NR_TILE - 1) / NR_TILE, tilesB = (nB + NR_TILE - 1) / NR_TILE;
    long long tiles = tilesA * tilesB * nBatch;
    for (long long t = blockIdx.x; t < tiles; t += gridDim.x)
    {
        long long bIdx = t / (tilesA * tilesB), rest = t - bIdx * tilesA * tilesB;
        int a0 = (int)(rest / tilesB) * NR_TILE, b0 = (int)(rest % tilesB) * NR_TILE;
        long long off[2];
        nr_unravel<2, unsigned long long>(batch, (unsigned long long)bIdx, off);
        // Load: lane tx walks A (source-contiguous), the 8 warps cover 32 values of B.
        for (int j = ty; j < NR_TILE; j += 8)
        {
            int a = a0 + tx, b = b0 + j;
            if (a < nA && b < nB) tile[j][tx] = src[off[0] + a * sA + b * sB];
        }
        __syncthreads();
        // Store: lane tx walks B (destination-contiguous); tile[tx][j] reads a column, conflict-free thanks to the pad.
        for (int j = ty; j < NR_TILE; j += 8)
        {
            int a = a0 + j, b = b0 + tx;
            if (a < nA && b < nB) dst[off[1] + a * dA + b * dB] = tile[tx][j];
        }
        // The next tile overwrites the shared tile: every lane must be done reading it.
        __syncthreads();
    }
}

extern "C" __global__ void nr_ew_transpose_copy(const void* src, void* dst, NrLayout batch, long long nBatch, int nA, int nB,
    long long sA, long long sB, long long dA, long long dB, int elementSize)
{
    // One tile buffer sized for the widest element, shared by the four element types (a __shared__ array per
    // template instance would add up to 15 KB of static shared memory per block).
    __shared__ unsigned long long raw[NR_TILE * (NR_TILE + 1)]; // 8-byte elements: aligned for every T
    switch (elementSize)
    {
    case 1: nr_transpose_run<unsigned char>((unsigned char(*)[NR_TILE + 1])raw, (const unsigned char*)src, (unsigned char*)dst, batch, nBatch, nA, nB, sA, sB, dA, dB); break;
    case 2: nr_transpose_run<uint16_t>((uint16_t(*)[NR_TILE + 1])raw, (const uint16_t*)src, (uint16_t*)dst, batch, nBatch, nA, nB, sA, sB, dA, dB); break;
    case 4: nr_transpose_run<uint32_t>((uint32_t(*)[NR_TILE + 1])raw, (const uint32_t*)src, (uint32_t*)dst, batch, nBatch, nA, nB, sA, sB, dA, dB); break;
    default: nr_transpose_run<uint64_t>((uint64_t(*)[NR_TILE + 1])raw, (const uint64_t*)src, (uint64_t*)dst, batch, nBatch, nA, nB, sA, sB, dA, dB); break;
    }
}

// ---------------------------------------------------------------- unary

// Op codes: the order of UnaryOp in src/Kernels/KernelOps.cs.
#define NR_U_NEG 0
#define NR_U_EXP 1
#define NR_U_LOG 2
#define NR_U_SQRT 3
#define NR_U_RSQRT 4
#define NR_U_POW 5
#define NR_U_SILU 6
#define NR_U_SIGMOID 7
#define NR_U_TANH 8
#define NR_U_SCALE 9
#define NR_U_ADDSCALAR 10
#define NR_U_SQUARE 11
#define NR_U_RELU 12
#define NR_U_ABS 13

// IEEE-accurate float versions of the reference's functions (NVRTC compiles without fast math: expf, logf,
// powf, tanhf are the ≤ 2 ulp library versions, / and sqrtf are correctly rounded).
template <int OP>
static __device__ __forceinline__ float nr_unary_f(float x, float alpha)
{
    switch (OP)
    {
    case NR_U_NEG: return -x;
    case NR_U_EXP: return expf(x);
    case NR_U_LOG: return logf(x);
    case NR_U_SQRT: return sqrtf(x);
    case NR_U_RSQRT: return 1.0f / sqrtf(x);
    case NR_U_POW: return powf(x, alpha);
    case NR_U_SILU: return x / (1.0f + expf(-x));
    case NR_U_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case NR_U_TANH: return tanhf(x);
    case NR_U_SCALE: return alpha * x;
    case NR_U_ADDSCALAR: return x + alpha;
    case NR_U_SQUARE: return x * x;
    case NR_U_RELU: return x > 0.f ? x : (x != x ? x : 0.f); // NaN propagates, as Math.Max / torch.relu
    default: return fabsf(x);
    }
}

// dy · op'(x), with y = op(x) where that is cheaper. The derivative is formed first and multiplied by dy last,
// like the reference, so dy = ±inf or NaN against a zero derivative gives NaN there too.
template <int OP>
static __device__ __forceinline__ float nr_unary_grad(float x, float y, float g, float alpha)
{
    float d;
    switch (OP)
    {
    case NR_U_NEG: d = -1.f; break;
    case NR_U_EXP: d = y; break;
    case NR_U_LOG: d = 1.0f / x; break;
    case NR_U_SQRT: d = 0.5f / y; break;
    case NR_U_RSQRT: d = -0.5f * y * y * y; break;
    case NR_U_POW: d = alpha * powf(x, alpha - 1.0f); break;
    case NR_U_SILU:
    {
        float s = 1.0f / (1.0f + expf(-x));
        d = s * (1.0f + x * (1.0f - s));
        break;
    }
    case NR_U_SIGMOID: d = y * (1.0f - y); break;
    case NR_U_TANH: d = 1.0f - y * y; break;
    case NR_U_SCALE: d = alpha; break;
    case NR_U_ADDSCALAR: d = 1.f; break;
    case NR_U_SQUARE: d = 2.0f * x; break;
    case NR_U_RELU: d = x > 0.f ? 1.f : 0.f; break;
    default: d = x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f); break;
    }
    return g * d;
}

// y = op(x); vec: x and y 16-byte aligned. y may alias x (each element is read and written by one thread).
template <int OP>
static __device__ void nr_unary_run(const float* x, float* y, long long n, float alpha, int vec)
{
    long long i = nr_gtid(), st = nr_gstride(), head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = i; j < n4; j += st)
        {
            nr_f4 v = ((const nr_f4*)x)[j];
            v.x = nr_unary_f<OP>(v.x, alpha);
            v.y = nr_unary_f<OP>(v.y, alpha);
            v.z = nr_unary_f<OP>(v.z, alpha);
            v.w = nr_unary_f<OP>(v.w, alpha);
            ((nr_f4*)y)[j] = v;
        }
        head = n4 << 2;
    }
    for (long long j = head + i; j < n; j += st) y[j] = nr_unary_f<OP>(x[j], alpha);
}

extern "C" __global__ void nr_ew_unary(int op, const float* x, float* y, long long n, float alpha, int vec)
{
    switch (op)
    {
    case NR_U_NEG: nr_unary_run<NR_U_NEG>(x, y, n, alpha, vec); break;
    case NR_U_EXP: nr_unary_run<NR_U_EXP>(x, y, n, alpha, vec); break;
    case NR_U_LOG: nr_unary_run<NR_U_LOG>(x, y, n, alpha, vec); break;
    case NR_U_SQRT: nr_unary_run<NR_U_SQRT>(x, y, n, alpha, vec); break;
    case NR_U_RSQRT: nr_unary_run<NR_U_RSQRT>(x, y, n, alpha, vec); break;
    case NR_U_POW: nr_unary_run<NR_U_POW>(x, y, n, alpha, vec); break;
    case NR_U_SILU: nr_unary_run<NR_U_SILU>(x, y, n, alpha, vec); break;
    case NR_U_SIGMOID: nr_unary_run<NR_U_SIGMOID>(x, y, n, alpha, vec); break;
    case NR_U_TANH: nr_unary_run<NR_U_TANH>(x, y, n, alpha, vec); break;
    case NR_U_SCALE: nr_unary_run<NR_U_SCALE>(x, y, n, alpha, vec); break;
    case NR_U_ADDSCALAR: nr_unary_run<NR_U_ADDSCALAR>(x, y, n, alpha, vec); break;
    case NR_U_SQUARE: nr_unary_run<NR_U_SQUARE>(x, y, n, alpha, vec); break;
    case NR_U_RELU: nr_unary_run<NR_U_RELU>(x, y, n, alpha, vec); break;
    default: nr_unary_run<NR_U_ABS>(x, y, n, alpha, vec); break;
    }
}

// dx = dy · op'(x); vec: all four pointers 16-byte aligned. Loads an op does not use (x for exp, y for log)
// are dead code after the template is specialised, so each op reads only what its derivative needs.
// dx may alias dy: every element is read before it is written, by the same thread.
template <int OP>
static __device__ void nr_unary_backward_run(const float* x, const float* y, const float* dy, float* dx, long long n, float alpha, int vec)
{
    long long i = nr_gtid(), st = nr_gstride(), head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = i; j < n4; j += st)
        {
            nr_f4 xv = ((const nr_f4*)x)[j], yv = ((const nr_f4*)y)[j], g = ((const nr_f4*)dy)[j], r;
            r.x = nr_unary_grad<OP>(xv.x, yv.x, g.x, alpha);
            r.y = nr_unary_grad<OP>(xv.y, yv.y, g.y, alpha);
            r.z = nr_unary_grad<OP>(xv.z, yv.z, g.z, alpha);
            r.w = nr_unary_grad<OP>(xv.w, yv.w, g.w, alpha);
            ((nr_f4*)dx)[j] = r;
        }
        head = n4 << 2;
    }
    for (long long j = head + i; j < n; j += st) dx[j] = nr_unary_grad<OP>(x[j], y[j], dy[j], alpha);
}

extern "C" __global__ void nr_ew_unary_backward(int op, const float* x, const float* y, const float* dy, float* dx, long long n, float alpha, int vec)
{
    switch (op)
    {
    case NR_U_NEG: nr_unary_backward_run<NR_U_NEG>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_EXP: nr_unary_backward_run<NR_U_EXP>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_LOG: nr_unary_backward_run<NR_U_LOG>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_SQRT: nr_unary_backward_run<NR_U_SQRT>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_RSQRT: nr_unary_backward_run<NR_U_RSQRT>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_POW: nr_unary_backward_run<NR_U_POW>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_SILU: nr_unary_backward_run<NR_U_SILU>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_SIGMOID: nr_unary_backward_run<NR_U_SIGMOID>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_TANH: nr_unary_backward_run<NR_U_TANH>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_SCALE: nr_unary_backward_run<NR_U_SCALE>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_ADDSCALAR: nr_unary_backward_run<NR_U_ADDSCALAR>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_SQUARE: nr_unary_backward_run<NR_U_SQUARE>(x, y, dy, dx, n, alpha, vec); break;
    case NR_U_RELU: nr_unary_backward_run<NR_U_RELU>(x, y, dy, dx, n, alpha, vec); break;
    default: nr_unary_backward_run<NR_U_ABS>(x, y, dy, dx, n, alpha, vec); break;
    }
}

// ---------------------------------------------------------------- binary and where

// Op codes: the order of BinaryOp in src/Kernels/KernelOps.cs.
#define NR_B_ADD 0
#define NR_B_SUB 1
#define NR_B_MUL 2
#define NR_B_DIV 3
#define NR_B_MAX 4
#define NR_B_MIN 5

template <int OP>
static __device__ __forceinline__ float nr_binary_f(float a, float b)
{
    switch (OP)
    {
    case NR_B_ADD: return a + b;
    case NR_B_SUB: return a - b;
    case NR_B_MUL: return a * b;
    case NR_B_DIV: return a / b;
    case NR_B_MAX: return nr_maximum(a, b);
    default: return nr_minimum(a, b);
    }
}

// Four consecutive elements of a flat operand: its own (stride 1, 16-byte aligned) or its one value
// broadcast (stride 0).
static __device__ __forceinline__ nr_f4 nr_load4(const float* p, int s, long long j)
{
    if (s) return ((const nr_f4*)p)[j];
    float v = p[0];
    nr_f4 r;
    r.x = v; r.y = v; r.z = v; r.w = v;
    return r;
}

// c = op(a, b) where each operand is contiguous (stride 1) or a scalar (stride 0) over the n elements of c.
// c may alias a or b (same element, same thread).
template <int OP>
static __device__ void nr_binary_flat_run(const float* a, int sa, const float* b, int sb, float* c, long long n, int vec)
{
    long long i = nr_gtid(), st = nr_gstride(), head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = i; j < n4; j += st)
        {
            nr_f4 x = nr_load4(a, sa, j), y = nr_load4(b, sb, j), r;
            r.x = nr_binary_f<OP>(x.x, y.x);
            r.y = nr_binary_f<OP>(x.y, y.y);
            r.z = nr_binary_f<OP>(x.z, y.z);
            r.w = nr_binary_f<OP>(x.w, y.w);
            ((nr_f4*)c)[j] = r;
        }
        head = n4 << 2;
    }
    for (long long j = head + i; j < n; j += st) c[j] = nr_binary_f<OP>(a[j * sa], b[j * sb]);
}

extern "C" __global__ void nr_ew_binary_flat(int op, const float* a, int sa, const float* b, int sb, float* c, long long n, int vec)
{
    switch (op)
    {
    case NR_B_ADD: nr_binary_flat_run<NR_B_ADD>(a, sa, b, sb, c, n, vec); break;
    case NR_B_SUB: nr_binary_flat_run<NR_B_SUB>(a, sa, b, sb, c, n, vec); break;
    case NR_B_MUL: nr_binary_flat_run<NR_B_MUL>(a, sa, b, sb, c, n, vec); break;
    case NR_B_DIV: nr_binary_flat_run<NR_B_DIV>(a, sa, b, sb, c, n, vec); break;
    case NR_B_MAX: nr_binary_flat_run<NR_B_MAX>(a, sa, b, sb, c, n, vec); break;
    default: nr_binary_flat_run<NR_B_MIN>(a, sa, b, sb, c, n, vec); break;
    }
}

// c[i] = op(a[off0(i)], b[off1(i)]) over the collapsed broadcast layout; c contiguous (writes coalesced).
// vec (host-checked): the last axis is a multiple of 4 long, each operand has stride 0 or 1 on it (va / vb =
// that stride) and, where 1, a 16-byte aligned base and strides on the other axes that are multiples of 4.
// Then every group of 4 outputs shares one unravel and one float4 (or broadcast scalar) per operand: the bias
// add / per-channel scale of a [rows, cols] activation runs at float4 width.
template <int OP, class I>
static __device__ void nr_binary_strided_run(const float* a, const float* b, float* c, const NrLayout& L, long long n, int vec, int va, int vb)
{
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = nr_gtid(); j < n4; j += nr_gstride())
        {
            long long off[2];
            nr_unravel<2, I>(L, (I)(j << 2), off);
            nr_f4 x = nr_load4(a + off[0], va, 0), y = nr_load4(b + off[1], vb, 0), r;
            r.x = nr_binary_f<OP>(x.x, y.x);
            r.y = nr_binary_f<OP>(x.y, y.y);
            r.z = nr_binary_f<OP>(x.z, y.z);
            r.w = nr_binary_f<OP>(x.w, y.w);
            ((nr_f4*)c)[j] = r;
        }
        return;
    }
    for (long long i = nr_gtid(); i < n; i += nr_gstride())
    {
        long long off[2];
        nr_unravel<2, I>(L, (I)i, off);
        c[i] = nr_binary_f<OP>(a[off[0]], b[off[1]]);
    }
}

template <int OP>
static __device__ __forceinline__ void nr_binary_strided_dispatch(const float* a, const float* b, float* c, const NrLayout& L, long long n,
    int wide, int vec, int va, int vb)
{
    if (wide) nr_binary_strided_run<OP, unsigned long long>(a, b, c, L, n, vec, va, vb);
    else nr_binary_strided_run<OP, unsigned>(a, b, c, L, n, vec, va, vb);
}

extern "C" __global__ void nr_ew_binary_strided(int op, const float* a, const float* b, float* c, NrLayout L, long long n, int wide,
    int vec, int va, int vb)
{
    switch (op)
    {
    case NR_B_ADD: nr_binary_strided_dispatch<NR_B_ADD>(a, b, c, L, n, wide, vec, va, vb); break;
    case NR_B_SUB: nr_binary_strided_dispatch<NR_B_SUB>(a, b, c, L, n, wide, vec, va, vb); break;
    case NR_B_MUL: nr_binary_strided_dispatch<NR_B_MUL>(a, b, c, L, n, wide, vec, va, vb); break;
    case NR_B_DIV: nr_binary_strided_dispatch<NR_B_DIV>(a, b, c, L, n, wide, vec, va, vb); break;
    case NR_B_MAX: nr_binary_strided_dispatch<NR_B_MAX>(a, b, c, L, n, wide, vec, va, vb); break;
    default: nr_binary_strided_dispatch<NR_B_MIN>(a, b, c, L, n, wide, vec, va, vb); break;
    }
}

// out = cond != 0 ? a : b with flat operands (stride 0 or 1 each); vec: every stride-1 pointer and out aligned.
extern "C" __global__ void nr_ew_where_flat(const float* cond, int sc, const float* a, int sa, const float* b, int sb,
    float* out, long long n, int vec)
{
    long long i = nr_gtid(), st = nr_gstride(), head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = i; j < n4; j += st)
        {
            nr_f4 c = nr_load4(cond, sc, j), x = nr_load4(a, sa, j), y = nr_load4(b, sb, j), r;
            r.x = c.x != 0.f ? x.x : y.x;
            r.y = c.y != 0.f ? x.y : y.y;
            r.z = c.z != 0.f ? x.z : y.z;
            r.w = c.w != 0.f ? x.w : y.w;
            ((nr_f4*)out)[j] = r;
        }
        head = n4 << 2;
    }
    for (long long j = head + i; j < n; j += st) out[j] = cond[j * sc] != 0.f ? a[j * sa] : b[j * sb];
}

template <class I>
static __device__ void nr_where_strided_run(const float* cond, const float* a, const float* b, float* out, const NrLayout& L, long long n)
{
    for (long long i = nr_gtid(); i < n; i += nr_gstride())
    {
        long long off[3];
        nr_unravel<3, I>(L, (I)i, off);
        // Only the chosen side is read (the other may be a NaN we must not care about, and it saves a load).
        out[i] = cond[off[0]] != 0.f ? a[off[1]] : b[off[2]];
    }
}

extern "C" __global__ void nr_ew_where_strided(const float* cond, const float* a, const float* b, float* out, NrLayout L, long long n, int wide)
{
    if (wide) nr_where_strided_run<unsigned long long>(cond, a, b, out, L, n);
    else nr_where_strided_run<unsigned>(cond, a, b, out, L, n);
}
