// Device helpers of the bf16 flash-attention family (attention_bf16.cu): the sm_80+ instructions the tensor-core
// path needs beyond the prelude (ldmatrix, cp.async, ex2.approx, cvt.rn.bf16x2), each with a plain C++ fallback for
// the CPU emulator (inline PTX does not run there). The ldmatrix fallback is written from the per-lane row addresses
// the PTX version hands to the hardware (exchanged through the warp), so the emulator checks the address
// arithmetic the GPU uses, not a second copy of the fragment layout.
#pragma once
#include "prelude.cuh"

// +∞ as a value (no <cmath>/INFINITY under NVRTC).
static __device__ __forceinline__ float nra_inf() { return __int_as_float(0x7f800000); }

// 2^x. On the GPU the MUFU approximation (rel. error ~2^-22, 2^-inf = +0), which is all a softmax whose
// probabilities are rounded to bf16 next needs; exp2f on the emulator.
#if defined(NR_CUDA_EMU)
static __device__ __forceinline__ float nra_exp2(float x) { return exp2f(x); }
#else
static __device__ __forceinline__ float nra_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
#endif

// Two floats → two bf16 (round to nearest even) in one 32-bit word, `lo` in the low half (the lower column of a
// fragment pair). cvt.rn.bf16x2.f32 puts its FIRST source in the HIGH half, hence (hi, lo).
#if defined(NR_CUDA_EMU)
static __device__ __forceinline__ uint32_t nra_pack_bf16(float lo, float hi)
{
    return (uint32_t)nr_f32_to_bf16(lo) | ((uint32_t)nr_f32_to_bf16(hi) << 16);
}
#else
static __device__ __forceinline__ uint32_t nra_pack_bf16(float lo, float hi)
{
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
#endif

// ---------------------------------------------------------------- cp.async (global → shared, 16 bytes)
// Copies 16 bytes (8 bf16) from global `src` to shared `dst` asynchronously; when !valid, writes 16 zero bytes
// instead (src-size 0: nothing is read, src only has to be a mapped address). Both addresses 16-byte aligned.
// Visible to the block after nra_cp_async_wait_all() by the issuing thread and a __syncthreads().
#if defined(NR_CUDA_EMU)
static __device__ __forceinline__ void nra_cp_async16(void* dst, const void* src, bool valid)
{
    if (valid) std::memcpy(dst, src, 16);
    else std::memset(dst, 0, 16);
}
static __device__ __forceinline__ void nra_cp_async_commit() {}
static __device__ __forceinline__ void nra_cp_async_wait_all() {}
#else
static __device__ __forceinline__ uint32_t nra_smem_u32(const void* p)
{
    uint32_t a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}
static __device__ __forceinline__ void nra_cp_async16(void* dst, const void* src, bool valid)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(nra_smem_u32(dst)), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
}
static __device__ __forceinline__ void nra_cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
static __device__ __forceinline__ void nra_cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }
#endif

// ---------------------------------------------------------------- ldmatrix (shared → mma fragments)
// Four 8×8 bf16 matrices of a 16×16 region of a row-major shared tile (element [r][c] at base[r·stride + c]),
// one per output register. Two orders of the four matrices (origin of matrix i, in (row, col)):
//   NRA_ORDER_A: (0,0) (8,0) (0,8) (8,8) — i.e. row block = i & 1, column block = i >> 1
//   NRA_ORDER_B: (0,0) (0,8) (8,0) (8,8) — row block = i >> 1, column block = i & 1
// Without trans, lane (g = lane/4, t = lane%4) receives of matrix i the pair M_i[g][2t], M_i[g][2t+1];
// with trans the pair M_i[2t][g], M_i[2t+1][g] (the lower index in the low half either way). What that means for
// each operand of m16n8k16 (fragments in prelude.cuh):
//   A operand, A[m][k] stored [m][k]:                 ORDER_A, no trans → a[0..3].
//   B operand, B[k][n] stored n-major as [n][k]:        ORDER_B, no trans → r[0..1] = b of n 0..7, r[2..3] = b of n 8..15.
//   B operand, B[k][n] stored k-major as [k][n]:        ORDER_A, trans    → r[0..1] = b of n 0..7, r[2..3] = b of n 8..15.
//   A operand, A[m][k] stored transposed as [k][m]:     ORDER_B, trans    → a[0..3].
// Every lane passes the same base; lane l supplies the row address of row (l & 7) of matrix (l >> 3), which is
// what ldmatrix.x4 reads. Stride·2 bytes ≡ 16 (mod 128) makes the 8 rows of a matrix hit 8 different 4-bank
// groups (conflict-free); base and stride keep every row address 16-byte aligned.
#define NRA_ORDER_A 0
#define NRA_ORDER_B 1

template <int ORDER>
static __device__ __forceinline__ const uint16_t* nra_ldsm_row(const uint16_t* base, int stride, int lane)
{
    int i = lane >> 3, r = lane & 7;
    int rb = ORDER == NRA_ORDER_A ? (i & 1) : (i >> 1);
    int cb = ORDER == NRA_ORDER_A ? (i >> 1) : (i & 1);
    return base + (rb * 8 + r) * stride + cb * 8;
}

#if defined(NR_CUDA_EMU)
// The hardware's rule applied to the exchanged row addresses.
template <int ORDER, bool TRANS>
static __device__ __forceinline__ void nra_ldsm_x4(uint32_t* r, const uint16_t* base, int stride)
{
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const uint16_t* mine = nra_ldsm_row<ORDER>(base, stride, lane);
    const uint64_t* all = nr_emu::warp_exchange((uint64_t)(uintptr_t)mine);
    for (int i = 0; i < 4; i++)
    {
        uint16_t lo, hi;
        if (!TRANS)
        {
            const uint16_t* row = (const uint16_t*)(uintptr_t)all[i * 8 + g];
            lo = row[2 * t];
            hi = row[2 * t + 1];
        }
        else
        {
            lo = ((const uint16_t*)(uintptr_t)all[i * 8 + 2 * t])[g];
            hi = ((const uint16_t*)(uintptr_t)all[i * 8 + 2 * t + 1])[g];
        }
        r[i] = (uint32_t)lo | ((uint32_t)hi << 16);
    }
}
#else
template <int ORDER, bool TRANS>
static __device__ __forceinline__ void nra_ldsm_x4(uint32_t* r, const uint16_t* base, int stride)
{
    uint32_t a = nra_smem_u32(nra_ldsm_row<ORDER>(base, stride, threadIdx.x & 31));
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a)
                     : "memory");
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(a)
                     : "memory");
}
#endif

// ---------------------------------------------------------------- tiles
// Stages rows [row0, row0 + 64) of a [rows, D] bf16 matrix into a shared tile with `stride` elements per row, as
// 16-byte cp.async chunks spread over the block's 128 threads (consecutive threads take consecutive chunks of a
// row: coalesced). Rows past `rows` are zero-filled (so masked keys/values/queries never inject NaN garbage from
// shared memory into an mma). Columns D.. of the tile are not written (the kernels never read them).
static __device__ __forceinline__ void nra_load_tile64(uint16_t* s, int stride, const uint16_t* g, int D, int row0, int rows)
{
    const int chunks = D >> 3;
    for (int c = threadIdx.x; c < 64 * chunks; c += 128)
    {
        int r = c / chunks, cc = c - r * chunks;
        int gr = row0 + r;
        bool ok = gr < rows;
        nra_cp_async16(s + r * stride + cc * 8, g + (long long)(ok ? gr : 0) * D + cc * 8, ok);
    }
}
