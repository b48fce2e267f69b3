// The device side of the CPU emulator (NR_CUDA_EMU): what the kernels see instead of the CUDA built-ins.
// Each CUDA thread of a block runs as a cooperative fiber on the launching host thread; blocks run one after
// another. __syncthreads, the warp shuffles and the warp votes are rendezvous points: a fiber that reaches one
// parks until every live thread of its block (or warp) has arrived. Shared memory declared in a kernel is a
// static per host thread (blocks never overlap on one host thread), so __shared__ means static thread_local.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>

#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __constant__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __restrict__ __restrict

// Kernels are written `extern "C" __global__`: the linkage comes from the source, the export from here.
#define __global__ __attribute__((visibility("default")))

struct uint3 { unsigned x, y, z; };
struct dim3
{
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace nr_emu
{
struct Thread
{
    uint3 idx;
    int linear;
};

struct BlockState
{
    uint3 index;      // blockIdx
    uint3 size;       // blockDim
    uint3 grid;       // gridDim
    unsigned char* dynamicShared;
};

extern thread_local Thread* current_thread;
extern thread_local BlockState* current_block;

// Rendezvous of the whole block; returns after every live thread arrived.
void sync_block();
// Rendezvous of the calling thread's warp. Each lane deposits 8 bytes and may read every lane's deposit
// until the next exchange; returns the deposits of the warp (32 entries, indexed by lane).
const uint64_t* warp_exchange(uint64_t mine);
// Rendezvous of the warp without data (__syncwarp).
void sync_warp();
}

#define threadIdx (nr_emu::current_thread->idx)
#define blockIdx (nr_emu::current_block->index)
#define blockDim (nr_emu::current_block->size)
#define gridDim (nr_emu::current_block->grid)

inline void* nr_emu_dynamic_shared() { return nr_emu::current_block->dynamicShared; }

inline void __syncthreads() { nr_emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { nr_emu::sync_warp(); }

template <class T> inline uint64_t nr_emu_bits(T v) { uint64_t u = 0; std::memcpy(&u, &v, sizeof(T)); return u; }
template <class T> inline T nr_emu_from_bits(uint64_t u) { T v; std::memcpy(&v, &u, sizeof(T)); return v; }
inline int nr_emu_lane() { return nr_emu::current_thread->linear & 31; }

// Shuffles: the whole warp takes part (full mask), as every kernel here uses them.
template <class T> inline T __shfl_xor_sync(unsigned, T v, int laneMask)
{
    const uint64_t* all = nr_emu::warp_exchange(nr_emu_bits(v));
    return nr_emu_from_bits<T>(all[(nr_emu_lane() ^ laneMask) & 31]);
}
template <class T> inline T __shfl_sync(unsigned, T v, int src)
{
    const uint64_t* all = nr_emu::warp_exchange(nr_emu_bits(v));
    return nr_emu_from_bits<T>(all[src & 31]);
}
template <class T> inline T __shfl_down_sync(unsigned, T v, unsigned d)
{
    const uint64_t* all = nr_emu::warp_exchange(nr_emu_bits(v));
    int src = nr_emu_lane() + (int)d;
    return src < 32 ? nr_emu_from_bits<T>(all[src]) : v;
}
template <class T> inline T __shfl_up_sync(unsigned, T v, unsigned d)
{
    const uint64_t* all = nr_emu::warp_exchange(nr_emu_bits(v));
    int src = nr_emu_lane() - (int)d;
    return src >= 0 ? nr_emu_from_bits<T>(all[src]) : v;
}
inline unsigned __ballot_sync(unsigned, int pred)
{
    const uint64_t* all = nr_emu::warp_exchange(pred != 0 ? 1u : 0u);
    unsigned m = 0;
    for (int l = 0; l < 32; l++) m |= (unsigned)(all[l] & 1u) << l;
    return m;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned, int pred)
{
    const uint64_t* all = nr_emu::warp_exchange(pred != 0 ? 1u : 0u);
    for (int l = 0; l < 32; l++) if ((all[l] & 1u) == 0) return 0;
    return 1;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return x == 0 ? 0 : __builtin_ctz((unsigned)x) + 1; }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline float __int_as_float(int x) { return nr_emu_from_bits<float>((uint32_t)x); }
inline int __float_as_int(float x) { return (int)(uint32_t)nr_emu_bits(x); }
inline float __uint_as_float(unsigned x) { return nr_emu_from_bits<float>(x); }
inline unsigned __float_as_uint(float x) { return (uint32_t)nr_emu_bits(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
using std::isnan;
using std::isinf;
template <class T> inline T __ldg(const T* p) { return *p; }

// Atomics: the threads of a launch run one at a time on one host thread, so plain read-modify-write is atomic.
template <class T> inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
inline int atomicMax(int* p, int v) { int old = *p; if (v > old) *p = v; return old; }
inline int atomicMin(int* p, int v) { int old = *p; if (v < old) *p = v; return old; }
inline int atomicCAS(int* p, int cmp, int v) { int old = *p; if (old == cmp) *p = v; return old; }
inline unsigned atomicCAS(unsigned* p, unsigned cmp, unsigned v) { unsigned old = *p; if (old == cmp) *p = v; return old; }
inline int atomicExch(int* p, int v) { int old = *p; *p = v; return old; }
inline void __threadfence() {}
inline void __threadfence_block() {}

// mma.sync m16n8k16 (bf16 → fp32) by exchanging the fragments through the warp; the layout is the one the
// prelude documents (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type").
inline void nr_mma_bf16_16816(float* d, const uint32_t* a, const uint32_t* b)
{
    uint64_t a01[32], a23[32], bb[32];
    const uint64_t* x = nr_emu::warp_exchange((uint64_t)a[0] | ((uint64_t)a[1] << 32));
    std::memcpy(a01, x, sizeof a01);
    x = nr_emu::warp_exchange((uint64_t)a[2] | ((uint64_t)a[3] << 32));
    std::memcpy(a23, x, sizeof a23);
    x = nr_emu::warp_exchange((uint64_t)b[0] | ((uint64_t)b[1] << 32));
    std::memcpy(bb, x, sizeof bb);
    auto bf = [](uint32_t word, int high) { return nr_emu_from_bits<float>((uint32_t)((high ? (word >> 16) : (word & 0xffffu)) << 16)); };
    // A[r][k]: lane (r % 8)·4 + (k % 8)/2; register a0 (r<8,k<8), a1 (r≥8,k<8), a2 (r<8,k≥8), a3 (r≥8,k≥8).
    auto A = [&](int r, int k) {
        int lane = (r & 7) * 4 + ((k & 7) >> 1);
        int reg = (r >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
        uint64_t pair = reg < 2 ? a01[lane] : a23[lane];
        uint32_t word = (uint32_t)((reg & 1) ? (pair >> 32) : pair);
        return bf(word, k & 1);
    };
    // B[k][n]: lane n·4 + (k % 8)/2; register b0 (k<8), b1 (k≥8).
    auto B = [&](int k, int n) {
        int lane = n * 4 + ((k & 7) >> 1);
        uint32_t word = (uint32_t)(k >= 8 ? (bb[lane] >> 32) : bb[lane]);
        return bf(word, k & 1);
    };
    int lane = nr_emu_lane(), g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++)
    {
        int r = g + (i >= 2 ? 8 : 0), c = 2 * t + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 16; k++) acc += A(r, k) * B(k, c);
        d[i] = acc;
    }
}

// cp.async (prelude): the copy happens at once; the commit and the wait have nothing left to do.
inline void nr_cp_async16(void* smem, const void* gmem) { std::memcpy(smem, gmem, 16); }
inline void nr_cp_async_commit() {}
inline void nr_cp_async_wait_all() {}
