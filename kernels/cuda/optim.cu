// Source: AdamW (arXiv:1711.05101) as torch.optim.AdamW; SGD with momentum/Nesterov as torch.optim.SGD.
// Optimizer steps: AdamW (one tensor, and many tensors in one launch) and SGD with momentum / Nesterov.
//
// Design: an optimizer step is pure streaming: AdamW reads p, g, m, v and writes p, m, v (28 bytes per
// parameter) for ~15 flops, so the target is the card's copy bandwidth. Each thread moves 16 bytes per
// access (nr_f4, when the host found all four arrays 16-byte aligned), grid-stride, fp32 math with IEEE
// division and sqrt (no fast math), which is what PyTorch's fused AdamW does too.
// The multi-tensor AdamW (the equivalent of PyTorch's foreach/fused path) exists because a model has
// hundreds of parameter tensors, many of them small (norm weights, biases): one launch per tensor would be
// launch-latency bound. The host uploads a descriptor table (pointers, size, first chunk); the tensors are cut
// into 16384-element chunks numbered consecutively, and each block takes chunks grid-stride, finds the owning
// tensor by a binary search over the table's first-chunk column (log2(count) cached loads, negligible beside
// the 448 KB of traffic of a chunk) and streams it with float4 when that tensor's four arrays are aligned.
#include "prelude.cuh"
#include "elementwise.cuh"

// One AdamW update of one parameter (PyTorch semantics; see IKernels.AdamWStep).
static __device__ __forceinline__ void nr_adamw1(float& p, float g, float& m, float& v, float lr, float lrwd, float b1, float b2,
    float eps, float bias1, float bias2)
{
    p -= lrwd * p;
    m = b1 * m + (1.0f - b1) * g;
    v = b2 * v + (1.0f - b2) * g * g;
    p -= lr * (m / bias1) / (sqrtf(v / bias2) + eps);
}

// Elements [0, n) of one tensor, split over `lanes` threads starting at `lane` (grid-stride for the
// single-tensor kernel, block-stride inside one chunk for the multi-tensor one).
static __device__ __forceinline__ void nr_adamw_span(float* p, const float* g, float* m, float* v, long long n, long long lane,
    long long lanes, int vec, float lr, float lrwd, float b1, float b2, float eps, float bias1, float bias2)
{
    long long head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = lane; j < n4; j += lanes)
        {
            nr_f4 pv = ((nr_f4*)p)[j], gv = ((const nr_f4*)g)[j], mv = ((nr_f4*)m)[j], vv = ((nr_f4*)v)[j];
            nr_adamw1(pv.x, gv.x, mv.x, vv.x, lr, lrwd, b1, b2, eps, bias1, bias2);
            nr_adamw1(pv.y, gv.y, mv.y, vv.y, lr, lrwd, b1, b2, eps, bias1, bias2);
            nr_adamw1(pv.z, gv.z, mv.z, vv.z, lr, lrwd, b1, b2, eps, bias1, bias2);
            nr_adamw1(pv.w, gv.w, mv.w, vv.w, lr, lrwd, b1, b2, eps, bias1, bias2);
            ((nr_f4*)p)[j] = pv;
            ((nr_f4*)m)[j] = mv;
            ((nr_f4*)v)[j] = vv;
        }
        head = n4 << 2;
    }
    for (long long j = head + lane; j < n; j += lanes)
    {
        float pv = p[j], mv = m[j], vv = v[j];
        nr_adamw1(pv, g[j], mv, vv, lr, lrwd, b1, b2, eps, bias1, bias2);
        p[j] = pv;
        m[j] = mv;
        v[j] = vv;
    }
}

// p, g, m, v: [n]; vec: all four 16-byte aligned.
extern "C" __global__ void nr_optim_adamw(float* p, const float* g, float* m, float* v, long long n, float lr, float beta1,
    float beta2, float eps, float weightDecay, float bias1, float bias2, int vec)
{
    nr_adamw_span(p, g, m, v, n, nr_gtid(), nr_gstride(), vec, lr, lr * weightDecay, beta1, beta2, eps, bias1, bias2);
}

// Mirrors CudaKernels.AdamTensor (C#, Sequential, 48 bytes).
struct NrAdamTensor
{
    float* p;
    const float* g;
    float* m;
    float* v;
    long long n;
    long long firstChunk; // chunks of the tensors before this one (non-decreasing; equal for empty tensors)
};

#define NR_ADAM_CHUNK 16384

extern "C" __global__ void nr_optim_adamw_multi(const NrAdamTensor* table, int count, long long totalChunks, float lr,
    float beta1, float beta2, float eps, float weightDecay, float bias1, float bias2)
{
    float lrwd = lr * weightDecay;
    for (long long c = blockIdx.x; c < totalChunks; c += gridDim.x)
    {
        // The owning tensor: the last one whose first chunk is ≤ c (an empty tensor shares its first chunk
        // with the next one and so is never picked).
        int lo = 0, hi = count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (table[mid].firstChunk <= c) lo = mid;
            else hi = mid - 1;
        }
        NrAdamTensor t = table[lo];
        long long start = (c - t.firstChunk) * NR_ADAM_CHUNK;
        long long len = min(t.n - start, (long long)NR_ADAM_CHUNK);
        // start is a multiple of 4, so a 16-byte aligned tensor stays aligned at every chunk.
        int vec = ((((unsigned long long)t.p) | ((unsigned long long)t.g) | ((unsigned long long)t.m) | ((unsigned long long)t.v)) & 15ull) == 0;
        nr_adamw_span(t.p + start, t.g + start, t.m + start, t.v + start, len, threadIdx.x, blockDim.x, vec,
            lr, lrwd, beta1, beta2, eps, bias1, bias2);
    }
}

// One SGD update (PyTorch semantics; see IKernels.SgdStep). buf is untouched (may be null) when momentum = 0.
static __device__ __forceinline__ void nr_sgd1(float& p, float g, float* buf, float lr, float momentum, float dampening,
    float wd, int nesterov, int firstStep)
{
    float gi = g + wd * p;
    float d = gi;
    if (momentum != 0.f)
    {
        float b = firstStep ? gi : momentum * *buf + (1.0f - dampening) * gi;
        *buf = b;
        d = nesterov ? gi + momentum * b : b;
    }
    p = p - lr * d;
}

// p, g, buf: [n]; vec: p, g (and buf when momentum ≠ 0) 16-byte aligned.
extern "C" __global__ void nr_optim_sgd(float* p, const float* g, float* buf, long long n, float lr, float momentum, float dampening,
    float weightDecay, int nesterov, int firstStep, int vec)
{
    long long i = nr_gtid(), st = nr_gstride(), head = 0;
    if (vec)
    {
        long long n4 = n >> 2;
        for (long long j = i; j < n4; j += st)
        {
            nr_f4 pv = ((nr_f4*)p)[j], gv = ((const nr_f4*)g)[j], bv;
            if (momentum != 0.f && !firstStep) bv = ((nr_f4*)buf)[j]; // the first step never reads buf
            nr_sgd1(pv.x, gv.x, &bv.x, lr, momentum, dampening, weightDecay, nesterov, firstStep);
            nr_sgd1(pv.y, gv.y, &bv.y, lr, momentum, dampening, weightDecay, nesterov, firstStep);
            nr_sgd1(pv.z, gv.z, &bv.z, lr, momentum, dampening, weightDecay, nesterov, firstStep);
            nr_sgd1(pv.w, gv.w, &bv.w, lr, momentum, dampening, weightDecay, nesterov, firstStep);
            ((nr_f4*)p)[j] = pv;
            if (momentum != 0.f) ((nr_f4*)buf)[j] = bv;
        }
        head = n4 << 2;
    }
    for (long long j = head + i; j < n; j += st)
    {
        float pv = p[j], bv = 0.f;
        if (momentum != 0.f && !firstStep) bv = buf[j];
        nr_sgd1(pv, g[j], &bv, lr, momentum, dampening, weightDecay, nesterov, firstStep);
        p[j] = pv;
        if (momentum != 0.f) buf[j] = bv;
    }
}
