// Source: GRPO (arXiv:2402.03300, DeepSeekMath) as TRL trainer/grpo_trainer.py computes it; the fused form of
//         kernels/cuda/grpo.cu on the CPU.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// GRPO's per-token loss and its logits gradient in one pass per row (<see cref="IGrpoTokenLoss"/>): the row's
/// max and Σexp once, the objective from them, then dlogits in the same visit while the row is still in cache.
/// The unfused path reads every [rows, V] row twice in two ops and round-trips [rows] tensors between them.
/// </summary>
public sealed unsafe partial class CpuKernels : IGrpoTokenLoss
{
    private struct GrpoState
    {
        public float* Logits, Old, Ref, Advantages, Mask, Weight, Loss, Logp, DLogits;
        public long* Ids;
        public int V;
        public GrpoTokenLossOptions Options;
    }

    public void GrpoTokenLoss(float* logits, long* ids, float* oldLogp, float* refLogp, float* advantages, float* mask,
        float* weight, float* loss, float* logp, float* dlogits, int rows, int V, GrpoTokenLossOptions options)
    {
        // logits: [rows, V]; ids, oldLogp, refLogp, mask, weight, loss, logp: [rows]; dlogits: [rows, V]
        if (rows <= 0) return;
        var st = new GrpoState
        {
            Logits = logits, Ids = ids, Old = oldLogp, Ref = refLogp, Advantages = advantages, Mask = mask,
            Weight = weight, Loss = loss, Logp = logp, DLogits = dlogits, V = V, Options = options,
        };
        CpuParallel.For(rows, RowsMinChunk(V), &GrpoTokenLossBody, &st);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GrpoTokenLossBody(void* state, long start, long end)
    {
        var st = (GrpoState*)state;
        int V = st->V;
        var p = st->Options;
        float invT = p.InvTemperature;
        for (long r = start; r < end; r++)
        {
            float* row = st->Logits + r * V;
            float mk = st->Mask != null ? st->Mask[r] : 1f;
            bool active = mk != 0f;
            float lse = 0f, dlp = 0f;
            if (active || st->Logp != null)
            {
                // As LogSoftmaxGather: max of z = invT·max(logits) (invT > 0), Σ exp(z − max) in double.
                float max = TensorPrimitives.Max(new ReadOnlySpan<float>(row, V)) * invT;
                lse = float.IsNaN(max) || float.IsNegativeInfinity(max)
                    ? max
                    : (float)(max + Math.Log(SumExp(row, V, invT, max)));
                float lp = row[st->Ids[r]] * invT - lse;
                GrpoTokenObjective.Evaluate(lp, st->Old != null ? st->Old[r] : lp, p.Beta != 0f ? st->Ref[r] : 0f,
                    st->Advantages[r / p.TokensPerSequence], p, out float tokenLoss, out dlp);
                if (st->Logp != null) st->Logp[r] = lp;
                st->Loss[r] = active ? tokenLoss * mk : 0f;
            }
            else st->Loss[r] = 0f;
            if (st->DLogits == null) continue;
            float* d = st->DLogits + r * V;
            if (!active)
            {
                // Masked rows: exactly zero, whatever their logits hold (NaN, ∞).
                new Span<float>(d, V).Clear();
                continue;
            }
            float coef = (st->Weight != null ? st->Weight[r] : 1f) * mk * dlp * invT;
            GradientRow(row, d, V, invT, lse, coef);
            d[st->Ids[r]] += coef;
        }
    }

    /// <summary>d[c] = −coef · exp(row[c]·invT − lse): the softmax part of coef · (onehot − softmax).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GradientRow(float* x, float* d, int V, float invT, float lse, float coef)
    {
        int c = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vt = Vector512.Create(invT);
            var vl = Vector512.Create(-lse);
            var vg = Vector512.Create(-coef);
            for (; c <= V - 16; c += 16)
                Vector512.Store(Vector512.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(x + c), vt, vl)) * vg, d + c);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vt = Vector256.Create(invT);
            var vl = Vector256.Create(-lse);
            var vg = Vector256.Create(-coef);
            for (; c <= V - 8; c += 8)
                Vector256.Store(Vector256.Exp(Vector256.FusedMultiplyAdd(Vector256.Load(x + c), vt, vl)) * vg, d + c);
        }
        for (; c < V; c++) d[c] = -coef * MathF.Exp(x[c] * invT - lse);
    }
}
