// Source: GRPO (arXiv:2402.03300, DeepSeekMath) as TRL trainer/grpo_trainer.py computes it.
// GRPO's per-token loss and its gradient straight from the policy logits: log-softmax at
// the sampling temperature, gather of the sampled token, the clipped surrogate with the k3 KL penalty of
// src/RL/GrpoLoss.cs, and d(weight·mask·loss)/dlogits — one kernel, one row per token.
//
// Design: the unfused path is LogSoftmaxGather (read logits) → [rows] elementwise ops (several tiny
// launches) → LogSoftmaxGatherBackward (read logits, write dlogits). Here: pass 1 reads the row once for the
// online (max, Σexp) statistics (rows.cuh), every thread of the group then evaluates the per-token objective
// redundantly from the same reduced values (a few scalar flops; no broadcast through shared memory needed),
// and pass 2 reads the row again and writes dlogits. DRAM: 2 reads + 1 write of [rows, V] — the same as the
// unfused backward alone, since the forward's read is the one the backward needs anyway — and no launches or
// [rows] round trips in between. Rows with mask 0 skip pass 1 when logp is not wanted, and write zero
// gradient rows without reading the logits (prompt and padding positions cost only the write).
// One row per group (warp for V ≤ 1024, else a block of up to 1024 threads looping over the vocabulary),
// grid-stride over rows, 16-byte loads when aligned.
#include "prelude.cuh"
#include "rows.cuh"

// By value, laid out as CudaKernels.GrpoTokenLossOptions (sequential, 4-byte fields).
struct nr_rows_grpo_params
{
    float invTemperature; // 1 / sampling temperature (> 0)
    float beta;           // KL coefficient; 0 drops the KL term (refLogp not read)
    float epsilonLow;     // ratio clamped below at 1 − epsilonLow
    float epsilonHigh;    // ratio clamped above at 1 + epsilonHigh
    int tokensPerSequence; // advantage of row r is advantages[r / tokensPerSequence]
};

// The per-token objective of GrpoLoss.Compute, in its float operation order, and its derivative in logp:
//   ρ = exp(logp − old);  l = −min(ρ·A, clamp(ρ, 1 − ε_low, 1 + ε_high)·A)  (ties take ρ·A);
//   l += β·(exp(ref − logp) − (ref − logp) − 1)
// dl/dlogp = −A·ρ where the unclipped term is taken or the ratio is inside the (inclusive) range, else 0;
//            + β·(1 − exp(ref − logp)).
static __device__ __forceinline__ void nr_rows_grpo_objective(float lp, float old, float ref, float A, const nr_rows_grpo_params& p,
    float& loss, float& dlp)
{
    float rho = expf(lp - old);
    float lo = 1.f - p.epsilonLow, hi = 1.f + p.epsilonHigh;
    bool below = rho < lo, above = rho > hi;
    float c2 = below ? lo : (above ? hi : rho);
    float l1 = rho * A, l2 = c2 * A;
    bool first = l1 <= l2;
    loss = -(first ? l1 : l2);
    dlp = (first || (!below && !above)) ? -A * rho : 0.f;
    if (p.beta != 0.f)
    {
        float d = ref - lp, ed = expf(d);
        loss = loss + (ed - d - 1.f) * p.beta;
        dlp = dlp + p.beta * (1.f - ed);
    }
}

// logits: [rows, V]; ids: [rows] in [0, V); oldLogp, refLogp, mask, weight: [rows] (oldLogp null: the current
// logp, ρ ≡ 1; refLogp read only when beta ≠ 0; mask, weight null: 1); advantages: [rows / tokensPerSequence].
// Out: loss [rows] = mask·l (0 where mask = 0); logp [rows] (may be null); dlogits [rows, V] (may be null) =
// weight·mask·dl/dlogp · invT · (onehot(id) − softmax(logits·invT)).
template <int W> static __device__ __forceinline__ void nr_rows_grpo(const float* __restrict__ logits, const long long* __restrict__ ids,
    const float* __restrict__ oldLogp, const float* __restrict__ refLogp, const float* __restrict__ advantages,
    const float* __restrict__ mask, const float* __restrict__ weight, float* __restrict__ loss, float* __restrict__ logp,
    float* __restrict__ dlogits, int rows, int V, nr_rows_grpo_params p, int warpMode)
{
    __shared__ float red[64];
    nr_rows_grp g = nr_rows_group(warpMode);
    float invT = p.invTemperature;
    for (long long r = g.first; r < rows; r += g.step)
    {
        const float* xr = logits + r * V;
        float mk = mask ? mask[r] : 1.f;
        bool active = mk != 0.f;
        float l = 0.f, lp = 0.f, dlp = 0.f;
        if (active || logp)
        {
            float m, s;
            nr_rows_row_stats<W>(xr, V, invT, g, red, m, s);
            l = nr_rows_lse(m, s);
            lp = xr[ids[r]] * invT - l;
            float tokenLoss;
            nr_rows_grpo_objective(lp, oldLogp ? oldLogp[r] : lp, p.beta != 0.f ? refLogp[r] : 0.f,
                advantages[r / p.tokensPerSequence], p, tokenLoss, dlp);
            if (g.lane == 0)
            {
                if (logp) logp[r] = lp;
                loss[r] = active ? tokenLoss * mk : 0.f;
            }
        }
        else if (g.lane == 0)
            loss[r] = 0.f;
        if (!dlogits) continue;
        float* dr = dlogits + r * V;
        if (!active)
        {
            nr_rows_vec<W> z;
#pragma unroll
            for (int k = 0; k < W; k++) z.v[k] = 0.f;
            for (int c = g.lane * W; c < V; c += g.size * W) nr_rows_st<W>(dr + c, z);
            continue;
        }
        long long id = ids[r];
        float coef = (weight ? weight[r] : 1.f) * mk * dlp * invT;
        for (int c = g.lane * W; c < V; c += g.size * W)
        {
            nr_rows_vec<W> v = nr_rows_ld<W>(xr + c);
#pragma unroll
            for (int k = 0; k < W; k++) v.v[k] = ((c + k == id ? 1.f : 0.f) - expf(fmaf(v.v[k], invT, -l))) * coef;
            nr_rows_st<W>(dr + c, v);
        }
    }
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_grpo_v4(const float* logits, const long long* ids, const float* oldLogp, const float* refLogp,
    const float* advantages, const float* mask, const float* weight, float* loss, float* logp, float* dlogits, int rows, int V,
    nr_rows_grpo_params p, int warpMode)
{
    nr_rows_grpo<4>(logits, ids, oldLogp, refLogp, advantages, mask, weight, loss, logp, dlogits, rows, V, p, warpMode);
}

extern "C" __global__ __launch_bounds__(1024) void nr_rows_grpo_v1(const float* logits, const long long* ids, const float* oldLogp, const float* refLogp,
    const float* advantages, const float* mask, const float* weight, float* loss, float* logp, float* dlogits, int rows, int V,
    nr_rows_grpo_params p, int warpMode)
{
    nr_rows_grpo<1>(logits, ids, oldLogp, refLogp, advantages, mask, weight, loss, logp, dlogits, rows, V, p, warpMode);
}
