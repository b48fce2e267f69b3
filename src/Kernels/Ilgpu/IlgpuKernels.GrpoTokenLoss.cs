// Source: GRPO (arXiv:2402.03300, DeepSeekMath) as TRL trainer/grpo_trainer.py computes it; the fused form of
//         kernels/cuda/grpo.cu on ILGPU.
using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

/// <summary>
/// The fused GRPO token loss (<see cref="IGrpoTokenLoss"/>) on ILGPU, correctness first like the other ILGPU row
/// kernels: one thread per row computes the row's max and Σexp, the objective, and (when wanted) its dlogits row.
/// One launch replaces log_softmax_gather, the [rows] elementwise objective and log_softmax_gather's backward.
/// </summary>
public sealed unsafe partial class IlgpuKernels : IGrpoTokenLoss
{
    // Which optional pointers were given (ILGPU views cannot be null: absent ones are replaced by a stand-in view).
    private const int HasOld = 1, HasRef = 2, HasMask = 4, HasWeight = 8, HasLogp = 16, HasDLogits = 32;

    /// <summary>The row kernel's views and scalars (a struct keeps the parameter list within ILGPU's limits).</summary>
    internal struct GrpoViews
    {
        public ArrayView<float> Logits, Old, Ref, Advantages, Mask, Weight, Loss, Logp, DLogits;
        public ArrayView<long> Ids;
        public int V, Flags;
    }

    private Action<Index1D, GrpoViews, GrpoTokenLossOptions>? _grpo;

    public void GrpoTokenLoss(float* logits, long* ids, float* oldLogp, float* refLogp, float* advantages, float* mask,
        float* weight, float* loss, float* logp, float* dlogits, int rows, int V, GrpoTokenLossOptions options)
    {
        // logits: [rows, V]; ids, oldLogp, refLogp, mask, weight, loss, logp: [rows]; dlogits: [rows, V]
        if (rows <= 0) return;
        lock (_backend.Sync)
        {
            var stand = F(loss);   // read by no thread where its flag is off
            int flags = (oldLogp != null ? HasOld : 0) | (refLogp != null && options.Beta != 0f ? HasRef : 0)
                | (mask != null ? HasMask : 0) | (weight != null ? HasWeight : 0) | (logp != null ? HasLogp : 0)
                | (dlogits != null ? HasDLogits : 0);
            var views = new GrpoViews
            {
                Logits = F(logits), Ids = L(ids), Advantages = F(advantages), Loss = stand,
                Old = oldLogp != null ? F(oldLogp) : stand,
                Ref = (flags & HasRef) != 0 ? F(refLogp) : stand,
                Mask = mask != null ? F(mask) : stand,
                Weight = weight != null ? F(weight) : stand,
                Logp = logp != null ? F(logp) : stand,
                DLogits = dlogits != null ? F(dlogits) : stand,
                V = V, Flags = flags,
            };
            (_grpo ??= _acc.LoadAutoGroupedStreamKernel<Index1D, GrpoViews, GrpoTokenLossOptions>(GrpoTokenLossKernel))(
                rows, views, options);
        }
    }

    /// <summary>One thread per row r: max, Σexp(z − max) in double, the objective, then the dlogits row.</summary>
    private static void GrpoTokenLossKernel(Index1D r, GrpoViews a, GrpoTokenLossOptions p)
    {
        int V = a.V;
        long row = (long)r.X * V;
        float invT = p.InvTemperature;
        float mk = (a.Flags & HasMask) != 0 ? a.Mask[r] : 1f;
        bool active = mk != 0f;
        float lse = 0f, dlp = 0f;
        if (active || (a.Flags & HasLogp) != 0)
        {
            float max = float.NegativeInfinity;
            bool nan = false;
            for (int c = 0; c < V; c++)
            {
                float z = a.Logits[row + c] * invT;
                nan |= float.IsNaN(z);
                max = z > max ? z : max;
            }
            if (nan) lse = float.NaN;
            else if (float.IsNegativeInfinity(max)) lse = max;
            else
            {
                double sum = 0;
                for (int c = 0; c < V; c++) sum += MathF.Exp(a.Logits[row + c] * invT - max);
                lse = max + (float)Math.Log(sum);
            }
            float lp = a.Logits[row + a.Ids[r]] * invT - lse;
            float old = (a.Flags & HasOld) != 0 ? a.Old[r] : lp;
            float refLogp = (a.Flags & HasRef) != 0 ? a.Ref[r] : 0f;
            float advantage = a.Advantages[r / p.TokensPerSequence];
            GrpoTokenObjective.Evaluate(lp, old, refLogp, advantage, p, out float tokenLoss, out dlp);
            if ((a.Flags & HasLogp) != 0) a.Logp[r] = lp;
            a.Loss[r] = active ? tokenLoss * mk : 0f;
        }
        else a.Loss[r] = 0f;
        if ((a.Flags & HasDLogits) == 0) return;
        if (!active)
        {
            // Masked rows: exactly zero, whatever their logits hold (NaN, ∞).
            for (int c = 0; c < V; c++) a.DLogits[row + c] = 0f;
            return;
        }
        float coef = ((a.Flags & HasWeight) != 0 ? a.Weight[r] : 1f) * mk * dlp * invT;
        long id = a.Ids[r];
        for (int c = 0; c < V; c++)
            a.DLogits[row + c] = ((c == id ? 1f : 0f) - MathF.Exp(a.Logits[row + c] * invT - lse)) * coef;
    }
}
