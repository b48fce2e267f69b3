// Source: the DeepSeek-V3 router (arXiv:2412.19437 §2.1.2; official inference/model.py Gate).
// Mixture-of-experts routing on the device: the DeepSeek-V3 router (biased group-limited top-k), the stable
// counting sort of the token-slots by expert, and the weighted dispatch / combine between token order and
// expert-sorted order (plus the routing-weight gradient).
//
// Router (nr_moe_route): one warp per token, the token's selection row in the warp's slice of shared memory
// (lane l owns experts l, l+32, ..., so every per-expert step is conflict-free and needs no barrier). Group
// scores: one lane per group scans its perGroup experts (8 lanes × 32 reads at E = 256, 8 groups; each lane
// starts at another offset, so the reads spread over the banks). Group
// choice: topkGroups rounds of a warp arg-max — the reference's rule "first group not kept yet, replaced only
// by a strictly larger score" is "that first group if its score is NaN, else the arg-max of the non-NaN ones"
// (a NaN group score can only come from +inf + -inf). Top-k: k rounds of a warp arg-max of 64-bit words
// (sortable key, complemented index: see moe.cuh) over the words strictly below the previous pick, so nothing
// is marked or sorted and exact ties and NaN fall out of the integer order. Weights are summed in j order by
// every lane (k shared reads), exactly the reference's float operations (no FMA: only adds, one divide, one
// multiply), so they match it bit for bit. Per token: E/32 + k·(E/32 + 10 shuffles) + topkGroups·15 shuffles;
// the kernel is latency-bound (a decode step's router is a few µs), its global traffic is E reads and E + 2k
// writes a token, coalesced.
//
// Permutation (nr_moe_permute_*): the n·k slots are cut into chunks of 32·G consecutive slots, one warp per
// chunk. Count: per 32-slot group, the lanes holding the same expert find each other with ceil(log2(E + 1))
// ballots (a warp multi-split), and the lowest of them adds the group's count to the warp's histogram in
// shared memory: no atomics. The histograms are written expert-major, counts[e, chunk], so ONE exclusive scan
// over [E, chunks] (a single block; ≤ 256 chunks keeps it ≤ 64K ints at E = 256) gives every (expert, chunk)
// its first sorted position and offsets[e] = the scan at (e, 0). Scatter: the warp walks its chunk again in slot
// order, a slot's position = (its expert's running cursor) + (its rank among equal lanes below it): stable,
// deterministic. Small n·k (≤ 4096 slots, a decode step or a short prompt) runs all three phases in one block
// (one launch, __syncthreads between phases); larger ones launch count / scan / scatter. Slots whose expert
// id is outside [0, E) are left out (offsets[E] < n·k shows it), as IKernels allows a device backend.
//
// Dispatch / combine / weight-grad: row kernels (L lanes per row, moe.cuh), float4 when the rows allow it,
// rows cut into pieces when there are too few of them to fill the SMs (decode). Dispatch copies one slot row
// per lane group (the token row is re-read k times, from L2); combine gathers a token's k slot rows and sums
// them in j order in registers (deterministic, no atomics); the weight gradient is one warp per slot (a dot
// over d, shuffle-reduced; one-warp blocks when the slots are few). All three are bandwidth-bound: k·d reads
// and k·d or d writes a token.
#include "prelude.cuh"
#include "moe.cuh"

// ---------------------------------------------------------------- router

// Same layout as CudaKernels.MoeRouteArgs.
struct nr_moe_route_args
{
    int experts, groups, topkGroups, k, useBias, normalize;
    float scale;
};

// scores: [n, E]; bias: [E] (read when useBias); selection: [n, E] (out: biased, group-masked scores);
// indices, weights: [n, k]. Dynamic shared memory: (E + 2·groups + 2·k) words per warp.
extern "C" __global__ void nr_moe_route(const float* scores, const float* bias, float* selection, int* indices,
    float* weights, int n, nr_moe_route_args a)
{
    NR_DYNAMIC_SHARED(float, smem);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int E = a.experts, G = a.groups, K = a.k, perGroup = E / G;
    // The warp's slice: sel[E] selection row, gs[G] group scores, wv[K] picked unbiased scores,
    // keep[G] kept-group flags, pick[K] picked experts.
    float* sel = smem + (long long)warp * (E + 2 * G + 2 * K);
    float* gs = sel + E;
    float* wv = gs + G;
    int* keep = (int*)(wv + K);
    int* pick = keep + G;

    for (int t = blockIdx.x * warps + warp; t < n; t += gridDim.x * warps)
    {
        const float* s = scores + (long long)t * E;
        // + 0 without bias, as the reference (it only turns -0 into +0, which ranks the same).
        for (int i = lane; i < E; i += 32) sel[i] = s[i] + (a.useBias ? bias[i] : 0.f);
        __syncwarp();

        if (G > 1)
        {
            // Group scores: lane g % 32 owns group g (its gs and keep entries). The top two are the same in
            // any scan order, so lane g starts its scan at offset g % perGroup: at perGroup = 32 the lanes
            // then read 8 different banks instead of all one.
            for (int g = lane; g < G; g += 32)
            {
                float best = NR_NEG_INF, second = NR_NEG_INF;
                const float* grp = sel + g * perGroup;
                int q = g % perGroup;
                for (int c = 0; c < perGroup; c++)
                {
                    float v = grp[q]; // NaN fails both tests: skipped
                    if (++q == perGroup) q = 0;
                    if (v > best) { second = best; best = v; }
                    else if (v > second) second = v;
                }
                gs[g] = a.useBias ? best + second : best;
                keep[g] = 0;
            }
            __syncwarp(); // gs is read by every lane below
            for (int r = 0; r < a.topkGroups; r++)
            {
                int first = 0x7fffffff;
                nr_u64 best = 0;
                for (int g = lane; g < G; g += 32)
                {
                    if (keep[g]) continue;
                    if (first == 0x7fffffff) first = g;
                    float v = gs[g];
                    if (v == v)
                    {
                        nr_u64 w = nr_pack(nr_key_nan_last(v), g);
                        if (w > best) best = w;
                    }
                }
                first = nr_warp_min_int(first); // r < topkGroups ≤ G: some group is left
                best = nr_warp_max_u64(best);
                float fv = gs[first];
                int win = fv != fv ? first : nr_unpack_index(best);
                if (lane == (win & 31)) keep[win] = 1; // only the owner reads keep[win] in later rounds
            }
            __syncwarp(); // keep is read by every lane below
            for (int i = lane; i < E; i += 32)
                if (!keep[i / perGroup]) sel[i] = NR_NEG_INF;
        }

        float* out = selection + (long long)t * E;
        for (int i = lane; i < E; i += 32) out[i] = sel[i];

        // Pick j: the best word strictly below pick j-1 (every lane reads only its own experts).
        nr_u64 prev = ~0ull;
        for (int j = 0; j < K; j++)
        {
            nr_u64 best = 0;
            for (int i = lane; i < E; i += 32)
            {
                nr_u64 w = nr_pack(nr_key_nan_last(sel[i]), i);
                if (w < prev && w > best) best = w;
            }
            best = nr_warp_max_u64(best);
            prev = best;
            if (lane == 0) pick[j] = nr_unpack_index(best);
        }
        __syncwarp();
        for (int j = lane; j < K; j += 32) wv[j] = s[pick[j]]; // the unbiased score weighs
        __syncwarp();
        float sum = 0.f;
        if (a.normalize)
            for (int j = 0; j < K; j++) sum += wv[j]; // j order, as the reference
        for (int j = lane; j < K; j += 32)
        {
            float w = wv[j];
            indices[(long long)t * K + j] = pick[j];
            weights[(long long)t * K + j] = (a.normalize ? w / sum : w) * a.scale;
        }
        // The next token's writes of sel / wv / pick all follow its first __syncwarp.
    }
}

// ---------------------------------------------------------------- permutation

// Same layout as CudaKernels.MoePermuteArgs. bits: enough to hold E (the "no expert" value).
struct nr_moe_permute_args
{
    int slots, experts, bits, groupsPerChunk, chunks;
};

// Expert of slot s, or E for a slot past the end or with an id outside [0, E).
static __device__ __forceinline__ int nr_moe_slot_expert(const int* indices, int s, const nr_moe_permute_args& a)
{
    if (s >= a.slots) return a.experts;
    int e = indices[s];
    return (unsigned)e < (unsigned)a.experts ? e : a.experts;
}

// The lanes of the warp holding the same value as this lane (values < 2^bits): one ballot a bit.
static __device__ __forceinline__ unsigned nr_moe_peers(int v, int bits)
{
    unsigned peers = NR_FULL_MASK;
    for (int b = 0; b < bits; b++)
    {
        int bit = (v >> b) & 1;
        unsigned ones = __ballot_sync(NR_FULL_MASK, bit);
        peers &= bit ? ones : ~ones;
    }
    return peers;
}

// counts[e, c] = slots of chunk c routed to expert e; hist: the warp's E counters in shared memory.
static __device__ void nr_moe_count_chunk(const int* indices, int* counts, int* hist, int c, const nr_moe_permute_args& a)
{
    const int lane = threadIdx.x & 31;
    for (int e = lane; e < a.experts; e += 32) hist[e] = 0;
    __syncwarp();
    int first = c * a.groupsPerChunk * 32;
    for (int g = 0; g < a.groupsPerChunk && first + g * 32 < a.slots; g++)
    {
        int e = nr_moe_slot_expert(indices, first + g * 32 + lane, a);
        unsigned peers = nr_moe_peers(e, a.bits);
        if (e < a.experts && (peers & nr_lanes_below()) == 0) hist[e] += __popc(peers);
        __syncwarp(); // the next group's leader for e may be another lane
    }
    // Lane e % 32 writes hist[e] out and is the one that zeroes it for the next chunk.
    for (int e = lane; e < a.experts; e += 32) counts[(long long)e * a.chunks + c] = hist[e];
}

// Chunk c's slots, in slot order, to their sorted positions; counts[e, c] holds (after the scan) the first
// sorted position of chunk c's slots of expert e.
static __device__ void nr_moe_scatter_chunk(const int* indices, const int* counts, int* hist, int* slotOrder,
    int* slotPosition, int c, const nr_moe_permute_args& a)
{
    const int lane = threadIdx.x & 31;
    for (int e = lane; e < a.experts; e += 32) hist[e] = counts[(long long)e * a.chunks + c];
    __syncwarp();
    int first = c * a.groupsPerChunk * 32;
    for (int g = 0; g < a.groupsPerChunk && first + g * 32 < a.slots; g++)
    {
        int s = first + g * 32 + lane;
        int e = nr_moe_slot_expert(indices, s, a);
        unsigned peers = nr_moe_peers(e, a.bits);
        int leader = __ffs((int)peers) - 1;
        // Only the leader reads the cursor; the others get it by shuffle, so the leader's update below
        // cannot race with their reads.
        int cursor = (e < a.experts && lane == leader) ? hist[e] : 0;
        cursor = __shfl_sync(NR_FULL_MASK, cursor, leader);
        if (e < a.experts)
        {
            int pos = cursor + __popc(peers & nr_lanes_below());
            slotOrder[pos] = s;
            if (slotPosition) slotPosition[s] = pos;
            if (lane == leader) hist[e] = cursor + __popc(peers);
        }
        __syncwarp();
    }
}

// In-place exclusive scan of counts[0, E·chunks) by the whole block; offsets[e] = the scan at (e, 0),
// offsets[E] = the total. Each thread owns 8 consecutive counts of a tile; the warp sums of a tile go through
// a double-buffered shared array, so one barrier a tile suffices.
static __device__ void nr_moe_scan_counts(int* counts, int* offsets, const nr_moe_permute_args& a)
{
    __shared__ int warpSums[2][32];
    const int Items = 8;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int m = a.experts * a.chunks; // < 2^31: checked by the host
    int carry = 0, tile = 0;
    for (int base = 0; base < m; base += blockDim.x * Items, tile++)
    {
        int first = base + threadIdx.x * Items;
        int v[Items];
        int local = 0;
#pragma unroll
        for (int q = 0; q < Items; q++)
        {
            v[q] = first + q < m ? counts[first + q] : 0;
            local += v[q];
        }
        int incl = nr_warp_inclusive_scan(local);
        if (lane == 31) warpSums[tile & 1][warp] = incl;
        __syncthreads();
        int before = 0, total = 0;
        for (int w = 0; w < warps; w++)
        {
            int x = warpSums[tile & 1][w];
            if (w < warp) before += x;
            total += x;
        }
        int run = carry + before + incl - local;
#pragma unroll
        for (int q = 0; q < Items; q++)
        {
            int at = first + q;
            if (at < m)
            {
                counts[at] = run;
                if (at % a.chunks == 0) offsets[at / a.chunks] = run;
            }
            run += v[q];
        }
        carry += total;
    }
    if (threadIdx.x == 0) offsets[a.experts] = carry;
}

// The whole counting sort in one block (small n·k). counts: [E, chunks] scratch; dynamic shared memory: E
// ints per warp.
extern "C" __global__ void nr_moe_permute_fused(const int* indices, int* counts, int* offsets, int* slotOrder,
    int* slotPosition, nr_moe_permute_args a)
{
    NR_DYNAMIC_SHARED(int, smem);
    const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int* hist = smem + (long long)warp * a.experts;
    for (int c = warp; c < a.chunks; c += warps) nr_moe_count_chunk(indices, counts, hist, c, a);
    __syncthreads(); // counts written by every warp, read by every thread
    nr_moe_scan_counts(counts, offsets, a);
    __syncthreads();
    for (int c = warp; c < a.chunks; c += warps) nr_moe_scatter_chunk(indices, counts, hist, slotOrder, slotPosition, c, a);
}

extern "C" __global__ void nr_moe_permute_count(const int* indices, int* counts, nr_moe_permute_args a)
{
    NR_DYNAMIC_SHARED(int, smem);
    const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int* hist = smem + (long long)warp * a.experts;
    for (int c = blockIdx.x * warps + warp; c < a.chunks; c += gridDim.x * warps) nr_moe_count_chunk(indices, counts, hist, c, a);
}

extern "C" __global__ void nr_moe_permute_scan(int* counts, int* offsets, nr_moe_permute_args a)
{
    nr_moe_scan_counts(counts, offsets, a);
}

extern "C" __global__ void nr_moe_permute_scatter(const int* indices, const int* counts, int* slotOrder, int* slotPosition,
    nr_moe_permute_args a)
{
    NR_DYNAMIC_SHARED(int, smem);
    const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int* hist = smem + (long long)warp * a.experts;
    for (int c = blockIdx.x * warps + warp; c < a.chunks; c += gridDim.x * warps)
        nr_moe_scatter_chunk(indices, counts, hist, slotOrder, slotPosition, c, a);
}

// ---------------------------------------------------------------- dispatch / combine

// y[pos[s], :] = w[s] · x[s / k, :], one slot row (or piece of it) per lane group. x: [n, d], y: [n·k, d]; d
// and the rows in units of T; w may be null.
template <class T>
static __device__ void nr_moe_dispatch(const T* x, const int* pos, const float* w, T* y, int n, int k, int d, nr_row_split rs)
{
    nr_row_map m = nr_rows(rs.lanes);
    long long pieces = (long long)n * k * rs.splits;
    for (long long v = m.row; v < pieces; v += m.step)
    {
        nr_piece p = nr_piece_of(v, d, rs);
        long long s = p.row;
        const T* src = x + (s / k) * d;
        T* dst = y + (long long)pos[s] * d;
        if (w)
        {
            float ws = w[s];
            for (int i = p.begin + m.lane; i < p.end; i += rs.lanes) dst[i] = ws * src[i];
        }
        else
            for (int i = p.begin + m.lane; i < p.end; i += rs.lanes) dst[i] = src[i];
    }
}

extern "C" __global__ void nr_moe_dispatch_f32(const float* x, const int* pos, const float* w, float* y, int n, int k, int d, nr_row_split rs)
{
    nr_moe_dispatch<float>(x, pos, w, y, n, k, d, rs);
}

extern "C" __global__ void nr_moe_dispatch_f32x4(const nr_f4* x, const int* pos, const float* w, nr_f4* y, int n, int k, int d4, nr_row_split rs)
{
    nr_moe_dispatch<nr_f4>(x, pos, w, y, n, k, d4, rs);
}

// y[t, :] = Σ_j w[t·k + j] · src[pos[t·k + j], :], j ascending in a register. src: [n·k, d]; y: [n, d].
template <class T>
static __device__ void nr_moe_combine(const T* src, const int* pos, const float* w, T* y, int n, int k, int d, nr_row_split rs)
{
    nr_row_map m = nr_rows(rs.lanes);
    long long pieces = (long long)n * rs.splits;
    for (long long v = m.row; v < pieces; v += m.step)
    {
        nr_piece p = nr_piece_of(v, d, rs);
        long long t = p.row;
        for (int i = p.begin + m.lane; i < p.end; i += rs.lanes)
        {
            T acc;
            nr_set_zero(acc);
            for (int j = 0; j < k; j++)
            {
                long long s = t * k + j;
                acc = nr_fma(w ? w[s] : 1.f, src[(long long)pos[s] * d + i], acc);
            }
            y[t * d + i] = acc;
        }
    }
}

extern "C" __global__ void nr_moe_combine_f32(const float* src, const int* pos, const float* w, float* y, int n, int k, int d, nr_row_split rs)
{
    nr_moe_combine<float>(src, pos, w, y, n, k, d, rs);
}

extern "C" __global__ void nr_moe_combine_f32x4(const nr_f4* src, const int* pos, const float* w, nr_f4* y, int n, int k, int d4, nr_row_split rs)
{
    nr_moe_combine<nr_f4>(src, pos, w, y, n, k, d4, rs);
}

// dw[s] = dy[s / k, :] · src[pos[s], :]: one warp per slot. dy: [n, d]; src: [n·k, d]; dw: [n·k].
template <class T>
static __device__ void nr_moe_weight_grad(const T* dy, const T* src, const int* pos, float* dw, int n, int k, int d)
{
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    long long slots = (long long)n * k;
    for (long long s = (long long)blockIdx.x * warps + (threadIdx.x >> 5); s < slots; s += (long long)gridDim.x * warps)
    {
        const T* g = dy + (s / k) * d;
        const T* r = src + (long long)pos[s] * d;
        float acc = 0.f;
        for (int i = lane; i < d; i += 32) acc = nr_dot_add(g[i], r[i], acc);
        acc = nr_warp_sum(acc);
        if (lane == 0) dw[s] = acc;
    }
}

extern "C" __global__ void nr_moe_weight_grad_f32(const float* dy, const float* src, const int* pos, float* dw, int n, int k, int d)
{
    nr_moe_weight_grad<float>(dy, src, pos, dw, n, k, d);
}

extern "C" __global__ void nr_moe_weight_grad_f32x4(const nr_f4* dy, const nr_f4* src, const int* pos, float* dw, int n, int k, int d4)
{
    nr_moe_weight_grad<nr_f4>(dy, src, pos, dw, n, k, d4);
}
