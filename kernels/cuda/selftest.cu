// Self-tests of the device model the other kernels rely on: the block reductions of the prelude (warp
// shuffles + barriers) and the tensor-core fragment layout of nr_mma_bf16_16816. On a GPU they check the
// prelude against the hardware; on the emulator they check the emulator. Two kernels break the rules on
// purpose, to show that the emulator catches it (run on the emulator only: on a GPU they are undefined).
#include "prelude.cuh"

// out[0] = Σ x, out[1] = max x, by one block of any multiple of 32 threads.
extern "C" __global__ void nr_selftest_block_reduce(const float* x, float* out, int n)
{
    __shared__ float scratch[32];
    float s = 0.f, m = -3.402823466e38f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        s += x[i];
        m = fmaxf(m, x[i]);
    }
    s = nr_block_sum(s, scratch);
    m = nr_block_max(m, scratch);
    if (threadIdx.x == 0)
    {
        out[0] = s;
        out[1] = m;
    }
}

static __device__ __forceinline__ uint32_t nr_pack_bf16(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }

// D[16×8] = A[16×16] · B[16×8] (row-major bf16 bits in, fp32 out) by one warp through nr_mma_bf16_16816, each
// lane loading its fragments in the layout the prelude documents.
extern "C" __global__ void nr_selftest_mma_bf16(const uint16_t* A, const uint16_t* B, float* D)
{
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    uint32_t a[4], b[2];
    a[0] = nr_pack_bf16(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]);
    a[1] = nr_pack_bf16(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]);
    a[2] = nr_pack_bf16(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]);
    a[3] = nr_pack_bf16(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]);
    b[0] = nr_pack_bf16(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
    b[1] = nr_pack_bf16(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
    float d[4] = {0.f, 0.f, 0.f, 0.f};
    nr_mma_bf16_16816(d, a, b);
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// Emulator only: half the block waits at __syncthreads while the other half waits in a shuffle (deadlock).
extern "C" __global__ void nr_selftest_deadlock(float* x)
{
    if (threadIdx.x < 16) __syncthreads();
    else x[threadIdx.x] = __shfl_xor_sync(NR_FULL_MASK, x[threadIdx.x], 1);
}

// Emulator only: a full-mask shuffle after half the warp returned.
extern "C" __global__ void nr_selftest_exited_lane_shuffle(float* x)
{
    if (threadIdx.x >= 16) return;
    x[threadIdx.x] = __shfl_xor_sync(NR_FULL_MASK, x[threadIdx.x], 1);
}

// Emulator only: reads a neighbour's shared-memory slot without the barrier that would order it after the
// neighbour's write. With threads resumed forward the writer (t − 1) always ran first, so the race hides; the
// reverse schedule exposes it (the slot still holds the 0xff poison of fresh dynamic shared memory).
extern "C" __global__ void nr_selftest_missing_barrier(float* out)
{
    NR_DYNAMIC_SHARED(float, s);
    int t = threadIdx.x;
    s[t] = (float)t;
    out[t] = t > 0 ? s[t - 1] : 0.f; // a __syncthreads() belongs before this read
}
