// Device helpers shared by the GEMM family: gemm.cu (fp32 SIMT) and gemm_bf16.cu (bf16 tensor cores).
//   - the launch parameter block (one struct by value, mirrored by CudaKernels.GemmParams in C#);
//   - the grouped-GEMM descriptor (one per item, uploaded as a table; mirrored by CudaKernels.GemmGroupItem);
//   - 16-byte vector types, the L2-friendly tile order;
//   - cp.async (global → shared without a register round trip, zero-filling past the edge) and ldmatrix
//     (a warp loads four 8×8 b16 matrices from shared memory in mma fragment order, optionally transposed).
//     Both are inline PTX on the GPU and under clang; under the emulator (NR_CUDA_EMU) they are plain C++ with
//     the same results: cp.async copies at once (so waiting is a no-op) and ldmatrix exchanges the lanes' row
//     addresses through the warp, exactly the data flow of the hardware instruction.
#pragma once

// ---------------------------------------------------------------- parameters

// One GEMM launch, passed by value. Row-major C = alpha · op(A) · op(B) + beta · C (IKernels.Gemm):
// op(A) is M×K (A stored K×M when transA), op(B) is K×N (B stored N×K when transB). vecA/vecB: the operand's
// base address, leading dimension and batch stride allow aligned 16-byte loads; vecC: the same for C's
// vector stores (16 bytes for fp32 kernels, 8 bytes for the bf16 kernels' pairs). Computed on the host.
struct nr_gemm_params
{
    const void* A;
    const void* B;
    float* C;
    long long strideA, strideB, strideC;
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
    int batch, vecA, vecB, vecC, transA, transB;
};

// One item of a grouped GEMM (only items with M > 0 are in the table). tileStart: the prefix sum of the
// tile counts of the items before it, so block b works on the item with the last tileStart ≤ b.
struct nr_gemm_group_item
{
    const void* A;
    const void* B;
    float* C;
    int M, K, tileStart, pad;
};

// The item a block of a grouped launch works on: binary search of the prefix sums (count ≤ a few hundred,
// the table stays in L1/L2; every thread searches, which costs less than a broadcast through shared memory).
static __device__ __forceinline__ int nr_gemm_group_find(const nr_gemm_group_item* items, int count, int tile)
{
    int lo = 0, hi = count - 1;
    while (lo < hi)
    {
        int mid = (lo + hi + 1) >> 1;
        if (items[mid].tileStart <= tile) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// ---------------------------------------------------------------- vectors and tile order

struct __align__(16) nr_gemm_f4 { float x, y, z, w; };
struct __align__(8) nr_gemm_f2 { float x, y; };
struct __align__(16) nr_gemm_u4 { uint32_t x, y, z, w; };

// Block id → (tile row, tile col) of a tilesM × tilesN grid, walking groups of 8 tile rows column by column:
// the blocks resident at one time then share a few A row panels and B column panels, which stay in L2
// (the plain row-major order streams all of B for every tile row).
static __device__ __forceinline__ void nr_gemm_tile_of(int id, int tilesM, int tilesN, int& tm, int& tn)
{
    const int G = 8;
    int per = G * tilesN;
    int group = id / per;
    int first = group * G;
    int rows = min(tilesM - first, G);
    int r = id - group * per;
    tm = first + r % rows;
    tn = r / rows;
}

// ---------------------------------------------------------------- cp.async and ldmatrix

#if defined(NR_CUDA_EMU)

// 16 bytes global → shared; bytes past srcBytes are zero (the tile edge).
static inline void nr_gemm_cp_async16(void* dst, const void* src, int srcBytes)
{
    unsigned char* d = (unsigned char*)dst;
    const unsigned char* s = (const unsigned char*)src;
    for (int i = 0; i < 16; i++) d[i] = i < srcBytes ? s[i] : (unsigned char)0;
}
static inline void nr_gemm_cp_async_commit() {}
template <int N> static inline void nr_gemm_cp_async_wait() {}

// ldmatrix.x4: lanes 8i..8i+7 give the row addresses of matrix i (8 rows of 8 b16); lane l receives in r[i]
// row l/4, columns 2(l%4) and 2(l%4)+1 of matrix i (the lower column in the low half).
static inline void nr_gemm_ldmatrix_x4(uint32_t* r, const uint16_t* row)
{
    uint64_t rows[32];
    std::memcpy(rows, nr_emu::warp_exchange((uint64_t)(uintptr_t)row), sizeof rows);
    int lane = nr_emu_lane();
    for (int i = 0; i < 4; i++)
    {
        const uint16_t* p = (const uint16_t*)(uintptr_t)rows[i * 8 + (lane >> 2)];
        r[i] = (uint32_t)p[2 * (lane & 3)] | ((uint32_t)p[2 * (lane & 3) + 1] << 16);
    }
}

// ldmatrix.x4.trans: as above, but lane l receives column l/4 of rows 2(l%4) and 2(l%4)+1.
static inline void nr_gemm_ldmatrix_x4_trans(uint32_t* r, const uint16_t* row)
{
    uint64_t rows[32];
    std::memcpy(rows, nr_emu::warp_exchange((uint64_t)(uintptr_t)row), sizeof rows);
    int lane = nr_emu_lane();
    for (int i = 0; i < 4; i++)
    {
        const uint16_t* p0 = (const uint16_t*)(uintptr_t)rows[i * 8 + 2 * (lane & 3)];
        const uint16_t* p1 = (const uint16_t*)(uintptr_t)rows[i * 8 + 2 * (lane & 3) + 1];
        r[i] = (uint32_t)p0[lane >> 2] | ((uint32_t)p1[lane >> 2] << 16);
    }
}

#else

// A generic pointer into shared memory as the 32-bit .shared address the PTX instructions take.
static __device__ __forceinline__ uint32_t nr_gemm_smem_addr(const void* p)
{
    uint32_t a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}

static __device__ __forceinline__ void nr_gemm_cp_async16(void* dst, const void* src, int srcBytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(nr_gemm_smem_addr(dst)), "l"(src), "r"(srcBytes)
                 : "memory");
}
static __device__ __forceinline__ void nr_gemm_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> static __device__ __forceinline__ void nr_gemm_cp_async_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

static __device__ __forceinline__ void nr_gemm_ldmatrix_x4(uint32_t* r, const uint16_t* row)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(nr_gemm_smem_addr(row))
                 : "memory");
}
static __device__ __forceinline__ void nr_gemm_ldmatrix_x4_trans(uint32_t* r, const uint16_t* row)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(nr_gemm_smem_addr(row))
                 : "memory");
}

#endif
