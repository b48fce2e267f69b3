// The prelude every kernel file includes first. The same .cu sources compile three ways:
//   1. NVRTC (the CUDA backend at run time) and nvcc: the CUDA built-ins exist; only the shared types
//      and helpers below are added.
//   2. clang-19 -x cuda --cuda-device-only -nocudainc -nocudalib (CI's compile check without a CUDA
//      install): nothing is declared, so the attributes, thread indices, math functions and warp
//      intrinsics are mapped here onto clang's attributes, __nvvm_* builtins and libdevice (__nv_*) names.
//   3. NR_CUDA_EMU (the CPU emulator the tests run the kernels on where no GPU is): g++ compiles the
//      kernels as C++; emu/emu_device.h supplies the built-ins, one cooperative fiber per CUDA thread.
// Kernels use only what this file provides, so a kernel that compiles in one mode compiles in all three.
#pragma once

#if defined(NR_CUDA_EMU)
#include "emu/emu_device.h"
#elif defined(__clang__) && !defined(__CUDACC_RTC__) && !defined(__NVCC__)
#define NR_CUDA_CLANG_CHECK 1
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __align__(n) __attribute__((aligned(n)))
#include <__clang_cuda_builtin_vars.h>

// libdevice entry points (left undefined in the PTX of a compile check, resolved by libdevice otherwise).
extern "C" __device__ float __nv_expf(float);
extern "C" __device__ float __nv_logf(float);
extern "C" __device__ float __nv_log1pf(float);
extern "C" __device__ float __nv_expm1f(float);
extern "C" __device__ float __nv_sqrtf(float);
extern "C" __device__ float __nv_rsqrtf(float);
extern "C" __device__ float __nv_powf(float, float);
extern "C" __device__ float __nv_tanhf(float);
extern "C" __device__ float __nv_sinf(float);
extern "C" __device__ float __nv_cosf(float);
extern "C" __device__ float __nv_fabsf(float);
extern "C" __device__ float __nv_fmaxf(float, float);
extern "C" __device__ float __nv_fminf(float, float);
extern "C" __device__ float __nv_floorf(float);
extern "C" __device__ float __nv_fmaf(float, float, float);
extern "C" __device__ double __nv_exp(double);
extern "C" __device__ double __nv_log(double);
extern "C" __device__ double __nv_sqrt(double);
extern "C" __device__ int __nv_isnanf(float);
extern "C" __device__ int __nv_isinff(float);
static __device__ __forceinline__ float expf(float x) { return __nv_expf(x); }
static __device__ __forceinline__ float logf(float x) { return __nv_logf(x); }
static __device__ __forceinline__ float log1pf(float x) { return __nv_log1pf(x); }
static __device__ __forceinline__ float expm1f(float x) { return __nv_expm1f(x); }
static __device__ __forceinline__ float sqrtf(float x) { return __nv_sqrtf(x); }
static __device__ __forceinline__ float rsqrtf(float x) { return __nv_rsqrtf(x); }
static __device__ __forceinline__ float powf(float x, float y) { return __nv_powf(x, y); }
static __device__ __forceinline__ float tanhf(float x) { return __nv_tanhf(x); }
static __device__ __forceinline__ float sinf(float x) { return __nv_sinf(x); }
static __device__ __forceinline__ float cosf(float x) { return __nv_cosf(x); }
static __device__ __forceinline__ float fabsf(float x) { return __nv_fabsf(x); }
static __device__ __forceinline__ float fmaxf(float x, float y) { return __nv_fmaxf(x, y); }
static __device__ __forceinline__ float fminf(float x, float y) { return __nv_fminf(x, y); }
static __device__ __forceinline__ float floorf(float x) { return __nv_floorf(x); }
static __device__ __forceinline__ float fmaf(float x, float y, float z) { return __nv_fmaf(x, y, z); }
static __device__ __forceinline__ double exp(double x) { return __nv_exp(x); }
static __device__ __forceinline__ double log(double x) { return __nv_log(x); }
static __device__ __forceinline__ double sqrt(double x) { return __nv_sqrt(x); }
static __device__ __forceinline__ bool isnan(float x) { return x != x; }
static __device__ __forceinline__ bool isinf(float x) { return __nv_isinff(x) != 0; }
static __device__ __forceinline__ float __expf(float x) { return __nvvm_ex2_approx_f(x * 1.4426950408889634f); }
static __device__ __forceinline__ float __fdividef(float x, float y) { return __nvvm_div_approx_f(x, y); }
static __device__ __forceinline__ int min(int a, int b) { return a < b ? a : b; }
static __device__ __forceinline__ int max(int a, int b) { return a > b ? a : b; }
static __device__ __forceinline__ long long min(long long a, long long b) { return a < b ? a : b; }
static __device__ __forceinline__ long long max(long long a, long long b) { return a > b ? a : b; }
static __device__ __forceinline__ unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }

static __device__ __forceinline__ void __syncwarp(unsigned mask = 0xffffffffu) { __nvvm_bar_warp_sync(mask); }
static __device__ __forceinline__ float __shfl_xor_sync(unsigned mask, float v, int laneMask) { return __nvvm_shfl_sync_bfly_f32(mask, v, laneMask, 0x1f); }
static __device__ __forceinline__ int __shfl_xor_sync(unsigned mask, int v, int laneMask) { return __nvvm_shfl_sync_bfly_i32(mask, v, laneMask, 0x1f); }
static __device__ __forceinline__ unsigned __shfl_xor_sync(unsigned mask, unsigned v, int laneMask) { return (unsigned)__nvvm_shfl_sync_bfly_i32(mask, (int)v, laneMask, 0x1f); }
static __device__ __forceinline__ float __shfl_sync(unsigned mask, float v, int src) { return __nvvm_shfl_sync_idx_f32(mask, v, src, 0x1f); }
static __device__ __forceinline__ int __shfl_sync(unsigned mask, int v, int src) { return __nvvm_shfl_sync_idx_i32(mask, v, src, 0x1f); }
static __device__ __forceinline__ unsigned __shfl_sync(unsigned mask, unsigned v, int src) { return (unsigned)__nvvm_shfl_sync_idx_i32(mask, (int)v, src, 0x1f); }
static __device__ __forceinline__ float __shfl_down_sync(unsigned mask, float v, unsigned d) { return __nvvm_shfl_sync_down_f32(mask, v, d, 0x1f); }
static __device__ __forceinline__ int __shfl_down_sync(unsigned mask, int v, unsigned d) { return __nvvm_shfl_sync_down_i32(mask, v, d, 0x1f); }
static __device__ __forceinline__ unsigned __ballot_sync(unsigned mask, int pred) { return __nvvm_vote_ballot_sync(mask, pred != 0); }
static __device__ __forceinline__ int __popc(unsigned x) { return __builtin_popcount(x); }
static __device__ __forceinline__ int __ffs(int x) { return x == 0 ? 0 : __builtin_ctz((unsigned)x) + 1; }
static __device__ __forceinline__ float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
static __device__ __forceinline__ int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
static __device__ __forceinline__ float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
static __device__ __forceinline__ unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
static __device__ __forceinline__ float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
static __device__ __forceinline__ int atomicAdd(int* p, int v) { return __nvvm_atom_add_gen_i(p, v); }
static __device__ __forceinline__ unsigned atomicAdd(unsigned* p, unsigned v) { return (unsigned)__nvvm_atom_add_gen_i((int*)p, (int)v); }
static __device__ __forceinline__ double atomicAdd(double* p, double v) { return __nvvm_atom_add_gen_d(p, v); }
static __device__ __forceinline__ int atomicMax(int* p, int v) { return __nvvm_atom_max_gen_i(p, v); }
static __device__ __forceinline__ int atomicCAS(int* p, int cmp, int v) { return __nvvm_atom_cas_gen_i(p, cmp, v); }
template <class T> static __device__ __forceinline__ T __ldg(const T* p) { return *p; }
#endif

#if !defined(NR_CUDA_EMU)
typedef unsigned int uint32_t;
typedef int int32_t;
typedef unsigned short uint16_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#endif

// ---------------------------------------------------------------- shared helpers (all three modes)

#define NR_FULL_MASK 0xffffffffu
#define NR_WARP 32

// bfloat16 is carried as its raw bits (uint16_t): no cuda_bf16.h is needed under NVRTC or clang.
static __device__ __forceinline__ float nr_bf16_to_f32(uint16_t b) { return __uint_as_float(((uint32_t)b) << 16); }

// Round to nearest even; NaN stays a (quiet) NaN.
static __device__ __forceinline__ uint16_t nr_f32_to_bf16(float f)
{
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// Sum over the 32 lanes of a warp (every lane gets the total).
static __device__ __forceinline__ float nr_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(NR_FULL_MASK, v, o);
    return v;
}

// NaN-propagating max over the warp.
static __device__ __forceinline__ float nr_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
    {
        float w = __shfl_xor_sync(NR_FULL_MASK, v, o);
        v = (v != v || w != w) ? (v + w) : (w > v ? w : v);
    }
    return v;
}

// Block-wide sum; scratch holds at least blockDim.x / 32 floats of shared memory. Every thread gets
// the total. Ends with a barrier, so the scratch may be reused right after.
static __device__ __forceinline__ float nr_block_sum(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = nr_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = 0.f;
    for (int w = 0; w < warps; w++) t += scratch[w];
    __syncthreads();
    return t;
}

// Block-wide NaN-propagating max; same contract as nr_block_sum.
static __device__ __forceinline__ float nr_block_max(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = nr_warp_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = scratch[0];
    for (int w = 1; w < warps; w++)
    {
        float s = scratch[w];
        t = (t != t || s != s) ? (t + s) : (s > t ? s : t);
    }
    __syncthreads();
    return t;
}

// Tensor cores: D = A·B + C for one warp, m16n8k16, bf16 inputs, fp32 accumulators (PTX mma.sync).
// Fragments per lane (g = lane / 4, t = lane % 4; each uint32_t holds two bf16, the lower column/row first):
//   a[0]: A[g][2t..2t+1]     a[1]: A[g+8][2t..2t+1]   a[2]: A[g][2t+8..2t+9]   a[3]: A[g+8][2t+8..2t+9]
//   b[0]: B[2t..2t+1][g]     b[1]: B[2t+8..2t+9][g]
//   c[0..1]: C[g][2t..2t+1]  c[2..3]: C[g+8][2t..2t+1]
#if defined(NR_CUDA_EMU)
// emu_device.h defines nr_mma_bf16_16816 by exchanging the fragments through the warp.
#else
static __device__ __forceinline__ void nr_mma_bf16_16816(float* d, const uint32_t* a, const uint32_t* b)
{
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

// Asynchronous 16-byte copies global → shared (sm_80 cp.async.cg, through L2 only): both addresses 16-byte
// aligned. Issue a batch, nr_cp_async_commit(), and before any thread reads the data: nr_cp_async_wait_all()
// (this thread's copies landed) then __syncthreads() (everyone's). Overlaps a tile's load with the math on the
// previous one without holding the tile in registers.
#if defined(NR_CUDA_EMU)
// emu_device.h copies at once (the waits are no-ops).
#else
static __device__ __forceinline__ void nr_cp_async16(void* smem, const void* gmem)
{
    asm volatile(
        "{\n\t.reg .u64 nr_sa64;\n\t.reg .u32 nr_sa32;\n\t"
        "cvta.to.shared.u64 nr_sa64, %0;\n\tcvt.u32.u64 nr_sa32, nr_sa64;\n\t"
        "cp.async.cg.shared.global [nr_sa32], [%1], 16;\n\t}\n"
        :: "l"(smem), "l"(gmem) : "memory");
}
static __device__ __forceinline__ void nr_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
static __device__ __forceinline__ void nr_cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
#endif

// Dynamic shared memory of a launch, as a typed pointer.
#if defined(NR_CUDA_EMU)
#define NR_DYNAMIC_SHARED(type, name) type* name = (type*)nr_emu_dynamic_shared()
#else
#define NR_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) unsigned char nr_dynamic_smem_[]; type* name = (type*)nr_dynamic_smem_
#endif
