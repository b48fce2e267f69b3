// Source: torch.topk (sorted, largest) with NaN ordered above every number.
// Top-k along rows: x: [rows, cols] → the k largest of each row, sorted descending, values and int64 indices
// [rows, k]; NaN above every number, equal numbers by lower index. Every element becomes a 64-bit word whose
// unsigned order IS that total order (moe.cuh), so selection and sorting compare integers and there are no
// ties left to break.
//
// Three paths, chosen by the host:
//  * cols ≤ 4096 (router rows, E = 256; any k): one block per row sorts the whole row in shared memory with a
//    bitonic network (P = cols rounded up to a power of two, padding words = 0 sort last; strides ≥ 8 through
//    shared memory, strides < 8 in registers, see below) and writes the first k. A thread per 8 words: a
//    router row is one warp, a 4096-row 512 threads and 36 KiB, so several blocks share an SM; rows are
//    grid-strided.
//  * longer rows, k ≤ 2048 (sampling over a vocabulary of 129280, k ≤ 64): one 1024-thread block per row runs
//    a radix select on the 32-bit keys: 4 passes of 8 bits, each a shared-memory histogram of the keys still
//    matching the prefix (shared atomics, one per warp when its 32 keys share the digit, so long runs of one
//    value do not serialize) and one warp finding the digit where the k-th key lies; that gives
//    the exact key T of the k-th element and how many of the elements equal to T to take. A 5th pass compacts
//    every key > T and the first needed keys = T in index order (ballots + per-warp counts, double-buffered so
//    one barrier a 1024-element tile), the ≤ 2048 survivors are bitonic-sorted in shared memory. 5 coalesced
//    reads of the row (L2-resident after the first: 517 KB for the vocabulary); the bottleneck is one SM's
//    bandwidth per row, so a batch of rows fills the device but a single row uses one SM (~15-25 µs).
//  * longer rows with k > 2048 (a full sort of a long row): a merge sort over global scratch: chunks of 2048
//    bitonic-sorted by blocks, then log2(cols/2048) merge levels of one thread per element, which finds its
//    place in the merged run by a binary search in the partner run (the words are distinct, so the rank is
//    exact, no merge-path partitioning needed); the last level writes only the first k positions straight
//    into the outputs. O(cols·log cols) work spread over the whole grid.
// Values are re-read from x at the chosen index (the exact bits, NaN payloads included).
#include "prelude.cuh"
#include "moe.cuh"

// ---------------------------------------------------------------- block-wide bitonic sort (descending)
// n words (n a power of two) in shared memory, one padding word after every 8 (s[i] lives at nr_bpad(i)): the
// register phases below read 8 consecutive words a thread, which would otherwise put a warp's lanes on two
// banks (16-way conflicts); padded, a warp's 64-bit accesses take the minimal two wavefronts.
// Stages with a stride ≥ 8 compare-exchange through shared memory (one barrier each, n/2 pairs over the
// block); the strides 4, 2, 1 of a merge run in registers on each thread's 8 consecutive words, so a sort of
// 2048 words needs 45 barriers instead of 66.
static __device__ __forceinline__ int nr_bpad(int i) { return i + (i >> 3); }

// Shared words for a sort of n.
#define NR_BITONIC_WORDS(n) ((n) + ((n) >> 3))

static __device__ __forceinline__ void nr_cas(nr_u64& a, nr_u64& b, bool desc)
{
    if ((a < b) == desc) // a pair never holds equal words except padding zeros
    {
        nr_u64 t = a;
        a = b;
        b = t;
    }
}

// One stage (size, stride ≥ 1) through shared memory; the halves of every size-block run in opposite
// directions, so the block ends descending.
static __device__ void nr_bitonic_shared_stage(nr_u64* s, int n, int size, int stride)
{
    for (int i = threadIdx.x; i < (n >> 1); i += blockDim.x)
    {
        int lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
        nr_u64 a = s[nr_bpad(lo)], b = s[nr_bpad(hi)];
        if ((a < b) == ((lo & size) == 0))
        {
            s[nr_bpad(lo)] = b;
            s[nr_bpad(hi)] = a;
        }
    }
    __syncthreads();
}

// The strides < 8 of the merges of sizes sizeFrom..sizeTo, in registers: thread t owns words [8t, 8t + 8).
static __device__ void nr_bitonic_register_phase(nr_u64* s, int n, int sizeFrom, int sizeTo)
{
    for (int t = threadIdx.x; t < (n >> 3); t += blockDim.x)
    {
        nr_u64 r[8];
#pragma unroll
        for (int q = 0; q < 8; q++) r[q] = s[nr_bpad(8 * t + q)];
        for (int size = sizeFrom; size <= sizeTo; size <<= 1)
        {
#pragma unroll
            for (int stride = 4; stride > 0; stride >>= 1)
            {
                if (stride >= size) continue;
#pragma unroll
                for (int q = 0; q < 8; q++)
                    if ((q & stride) == 0) nr_cas(r[q], r[q + stride], ((8 * t + q) & size) == 0);
            }
        }
#pragma unroll
        for (int q = 0; q < 8; q++) s[nr_bpad(8 * t + q)] = r[q];
    }
    __syncthreads();
}

// Sorts the n words of s descending; every thread of the block calls it after a barrier that published s.
// Ends with a barrier.
static __device__ void nr_bitonic_desc(nr_u64* s, int n)
{
    if (n < 16)
    {
        for (int size = 2; size <= n; size <<= 1)
            for (int stride = size >> 1; stride > 0; stride >>= 1) nr_bitonic_shared_stage(s, n, size, stride);
        return;
    }
    nr_bitonic_register_phase(s, n, 2, 8);
    for (int size = 16; size <= n; size <<= 1)
    {
        for (int stride = size >> 1; stride >= 8; stride >>= 1) nr_bitonic_shared_stage(s, n, size, stride);
        nr_bitonic_register_phase(s, n, size, size);
    }
}

// Writes the first k sorted words of row r as values (re-read from x) and indices.
static __device__ __forceinline__ void nr_topk_emit(const float* xr, const nr_u64* s, float* values, long long* indices,
    long long r, int k)
{
    for (int j = threadIdx.x; j < k; j += blockDim.x)
    {
        int c = nr_unpack_index(s[nr_bpad(j)]);
        values[r * k + j] = xr[c];
        indices[r * k + j] = c;
    }
}

// Path 1: whole row sorted in shared memory. Dynamic shared memory: NR_BITONIC_WORDS(P) words.
extern "C" __global__ void nr_topk_sort_rows(const float* x, float* values, long long* indices, int rows, int cols, int k, int P)
{
    NR_DYNAMIC_SHARED(nr_u64, s);
    for (int r = blockIdx.x; r < rows; r += gridDim.x)
    {
        const float* xr = x + (long long)r * cols;
        for (int c = threadIdx.x; c < P; c += blockDim.x) s[nr_bpad(c)] = c < cols ? nr_pack(nr_key_nan_first(xr[c]), c) : 0ull;
        __syncthreads();
        nr_bitonic_desc(s, P);
        nr_topk_emit(xr, s, values, indices, r, k);
        __syncthreads(); // the next row overwrites s
    }
}

// Path 2: radix select, compaction, sort of the survivors. Dynamic shared memory: NR_BITONIC_WORDS(Pk) words (Pk = k
// rounded up to a power of two). Needs blockDim.x a multiple of 32, ≥ 256.
extern "C" __global__ void nr_topk_select_rows(const float* x, float* values, long long* indices, int rows, int cols, int k, int Pk)
{
    NR_DYNAMIC_SHARED(nr_u64, cand);
    __shared__ int hist[256];
    __shared__ int warpCounts[2][32][2];
    __shared__ uint32_t selPrefix;
    __shared__ int selRemaining;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;

    for (int r = blockIdx.x; r < rows; r += gridDim.x)
    {
        const float* xr = x + (long long)r * cols;
        uint32_t prefix = 0, mask = 0;
        int remaining = k; // how many of the keys matching prefix are still to take
        for (int shift = 24; shift >= 0; shift -= 8)
        {
            for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
            __syncthreads();
            // A warp-uniform loop: a warp whose 32 keys share the digit (a run of equal values, a masked
            // vocabulary full of -inf) adds 32 once instead of 32 serialized atomics on one address.
            for (int c0 = 0; c0 < cols; c0 += blockDim.x)
            {
                int c = c0 + threadIdx.x, d = -1;
                if (c < cols)
                {
                    uint32_t key = nr_key_nan_first(xr[c]);
                    if ((key & mask) == prefix) d = (int)((key >> shift) & 255);
                }
                int d0 = __shfl_sync(NR_FULL_MASK, d, 0);
                if (__ballot_sync(NR_FULL_MASK, d == d0) == NR_FULL_MASK)
                {
                    if (lane == 0 && d0 >= 0) atomicAdd(&hist[d0], 32);
                }
                else if (d >= 0)
                    atomicAdd(&hist[d], 1);
            }
            __syncthreads();
            if (warp == 0)
            {
                // Lane l holds digits 255-8l down to 248-8l; the scan runs from the top digit down.
                int local = 0;
                for (int q = 0; q < 8; q++) local += hist[255 - 8 * lane - q];
                int incl = nr_warp_inclusive_scan(local);
                int above = incl - local; // keys with a larger digit than this lane's
                if (above < remaining && remaining <= incl)
                {
                    for (int q = 0; q < 8; q++)
                    {
                        int d = 255 - 8 * lane - q, h = hist[d];
                        if (above + h >= remaining)
                        {
                            selPrefix = prefix | ((uint32_t)d << shift);
                            selRemaining = remaining - above;
                            break;
                        }
                        above += h;
                    }
                }
            }
            __syncthreads();
            prefix = selPrefix;
            remaining = selRemaining;
            mask |= 255u << shift;
            // hist and selPrefix are rewritten only after the next pass's first barrier, which every thread
            // reaches after these reads.
        }

        // prefix = T, the key of the k-th element; take every key > T and the first `remaining` keys = T.
        const int greater = k - remaining;
        int gtBase = 0, eqBase = 0, tile = 0;
        for (int c0 = 0; c0 < cols; c0 += blockDim.x, tile++)
        {
            int c = c0 + threadIdx.x;
            uint32_t key = c < cols ? nr_key_nan_first(xr[c]) : 0u; // 0 is no key of an element
            bool gt = c < cols && key > prefix, eq = c < cols && key == prefix;
            unsigned bg = __ballot_sync(NR_FULL_MASK, gt), be = __ballot_sync(NR_FULL_MASK, eq);
            if (lane == 0)
            {
                warpCounts[tile & 1][warp][0] = __popc(bg);
                warpCounts[tile & 1][warp][1] = __popc(be);
            }
            __syncthreads();
            int pg = 0, pe = 0, tg = 0, te = 0;
            for (int w = 0; w < warps; w++)
            {
                int g = warpCounts[tile & 1][w][0], e = warpCounts[tile & 1][w][1];
                if (w < warp) { pg += g; pe += e; }
                tg += g;
                te += e;
            }
            if (gt) cand[nr_bpad(gtBase + pg + __popc(bg & nr_lanes_below()))] = nr_pack(key, c);
            if (eq)
            {
                int rank = eqBase + pe + __popc(be & nr_lanes_below());
                if (rank < remaining) cand[nr_bpad(greater + rank)] = nr_pack(key, c);
            }
            gtBase += tg;
            eqBase += te;
            if (gtBase == greater && eqBase >= remaining) break; // the same decision in every thread
        }
        for (int j = k + threadIdx.x; j < Pk; j += blockDim.x) cand[nr_bpad(j)] = 0ull;
        __syncthreads();
        nr_bitonic_desc(cand, Pk);
        nr_topk_emit(xr, cand, values, indices, r, k);
        __syncthreads(); // the next row rewrites cand and the counts
    }
}

// Path 3, step 1: words of every chunk of `chunk` (a power of two) elements of every row, sorted descending.
// out: [rows, cols] words. Dynamic shared memory: NR_BITONIC_WORDS(chunk) words.
extern "C" __global__ void nr_topk_chunk_sort(const float* x, nr_u64* out, int rows, int cols, int chunk)
{
    NR_DYNAMIC_SHARED(nr_u64, s);
    int perRow = (cols + chunk - 1) / chunk;
    long long blocks = (long long)rows * perRow;
    for (long long b = blockIdx.x; b < blocks; b += gridDim.x)
    {
        long long r = b / perRow;
        int c0 = (int)(b - r * perRow) * chunk;
        int len = min(chunk, cols - c0);
        const float* xr = x + r * cols;
        for (int q = threadIdx.x; q < chunk; q += blockDim.x)
            s[nr_bpad(q)] = q < len ? nr_pack(nr_key_nan_first(xr[c0 + q]), c0 + q) : 0ull;
        __syncthreads();
        nr_bitonic_desc(s, chunk);
        for (int q = threadIdx.x; q < len; q += blockDim.x) out[r * cols + c0 + q] = s[nr_bpad(q)];
        __syncthreads();
    }
}

// Path 3, step 2: merges sorted runs of `run` words pairwise. One thread per element: its place in the
// merged run is its place in its own run plus the number of words of the partner run above it. The last
// level (last != 0) writes values / indices of the first k positions instead of the scratch.
extern "C" __global__ void nr_topk_merge(const nr_u64* in, nr_u64* out, const float* x, float* values, long long* indices,
    int rows, int cols, int run, int k, int last)
{
    long long total = (long long)rows * cols;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x)
    {
        long long r = e / cols;
        int p = (int)(e - r * cols);
        int id = p / run, start = id * run, partner = (id ^ 1) * run;
        nr_u64 v = in[e];
        int place = p;
        if (partner < cols)
        {
            const nr_u64* q = in + r * cols + partner;
            int lo = 0, hi = min(run, cols - partner);
            while (lo < hi)
            {
                int mid = (lo + hi) >> 1;
                if (q[mid] > v) lo = mid + 1;
                else hi = mid;
            }
            place = min(start, partner) + (p - start) + lo;
        }
        if (!last) out[r * cols + place] = v;
        else if (place < k)
        {
            int c = nr_unpack_index(v);
            values[r * k + place] = x[r * cols + c];
            indices[r * k + place] = c;
        }
    }
}
