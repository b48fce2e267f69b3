// Device helpers shared by the memory / elementwise / reduction / optimizer kernels (elementwise.cu,
// convert.cu, reduce.cu, optim.cu): a 16-byte vector type for float4 loads, the by-value strided layout the
// broadcasting kernels take, and the flat-index → per-operand-offset unravelling.
#pragma once
#include "prelude.cuh"

// Neither NVRTC-without-headers, clang -nocudainc nor the emulator share a float4 definition, so the kernels
// use their own: 16-byte aligned, so `*(const nr_f4*)p` is one 128-bit load (ld.global.v4.f32). Only used
// where the host checked that every pointer involved is 16-byte aligned.
struct __align__(16) nr_f4
{
    float x, y, z, w;
};

struct __align__(8) nr_u16x4
{
    uint16_t x, y, z, w;
};

#define NR_MAX_RANK 8
#define NR_MAX_OPERANDS 3

// A broadcast layout after the host collapsed it (size-1 axes dropped, axes that walk memory as one merged),
// passed to kernels by value. Mirrors CudaKernels.EwLayout (C#, StructLayout.Sequential): int at 0, int[8]
// at 4, long long[3][8] at 40; 232 bytes. rank ≥ 1; the flat index runs over shape row-major (last axis
// fastest) and operand k sits at Σ index[a]·stride[k][a] elements.
struct NrLayout
{
    int rank;
    int shape[NR_MAX_RANK];
    long long stride[NR_MAX_OPERANDS][NR_MAX_RANK];
};

// Element offsets of the first NOPS operands of flat index i. I is unsigned (32-bit when the element count
// fits, which makes each axis a 32-bit divide instead of a 64-bit one). The axis loop is unrolled over the
// compile-time maximum rank so the layout stays in the parameter bank (a dynamically indexed kernel
// parameter would be copied to local memory).
template <int NOPS, class I>
static __device__ __forceinline__ void nr_unravel(const NrLayout& L, I i, long long* off)
{
#pragma unroll
    for (int k = 0; k < NOPS; k++) off[k] = 0;
#pragma unroll
    for (int a = NR_MAX_RANK - 1; a >= 1; a--)
    {
        if (a < L.rank)
        {
            I s = (I)L.shape[a];
            I q = i / s;
            long long r = (long long)(i - q * s);
#pragma unroll
            for (int k = 0; k < NOPS; k++) off[k] += r * L.stride[k][a];
            i = q;
        }
    }
#pragma unroll
    for (int k = 0; k < NOPS; k++) off[k] += (long long)i * L.stride[k][0];
}

// IEEE 754-2019 maximum / minimum (what .NET's MathF.Max/Min and torch.maximum do): a NaN operand gives NaN,
// and +0 > −0. Equal operands differ at most in the sign of zero, so AND / OR of the bits picks +0 / −0.
static __device__ __forceinline__ float nr_maximum(float a, float b)
{
    if (a != a) return a;
    if (b != b) return b;
    if (a == b) return __int_as_float(__float_as_int(a) & __float_as_int(b));
    return a > b ? a : b;
}

static __device__ __forceinline__ float nr_minimum(float a, float b)
{
    if (a != a) return a;
    if (b != b) return b;
    if (a == b) return __int_as_float(__float_as_int(a) | __float_as_int(b));
    return a < b ? a : b;
}

// Grid-stride helpers: the first index of this thread and the stride of the whole grid (64-bit, n may exceed 2^31).
static __device__ __forceinline__ long long nr_gtid() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
static __device__ __forceinline__ long long nr_gstride() { return (long long)gridDim.x * blockDim.x; }
