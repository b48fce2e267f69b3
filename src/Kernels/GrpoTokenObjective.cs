// Source: GRPO (arXiv:2402.03300, DeepSeekMath) as TRL trainer/grpo_trainer.py computes it; the float operation
//         order of kernels/cuda/grpo.cu (nr_rows_grpo_objective), so every backend's fused loss rounds alike.
namespace NativeReasoner.Kernels;

/// <summary>
/// The per-token objective of <see cref="IGrpoTokenLoss"/> shared by the CPU and ILGPU fused kernels (the CUDA
/// kernel spells out the same arithmetic in grpo.cu). Plain static code on scalars so that ILGPU compiles it into
/// its kernel as well.
/// </summary>
public static class GrpoTokenObjective
{
    /// <summary>
    /// ρ = exp(lp − old); loss = −min(ρ·A, clamp(ρ, 1 − ε_low, 1 + ε_high)·A) (ties take ρ·A), plus
    /// β·(exp(ref − lp) − (ref − lp) − 1) when β ≠ 0. dlp = dloss/dlp: −A·ρ where the unclipped term is taken or the
    /// ratio lies inside the inclusive range, else 0; plus β·(1 − exp(ref − lp)).
    /// </summary>
    public static void Evaluate(float lp, float old, float refLogp, float advantage, GrpoTokenLossOptions p,
        out float loss, out float dlp)
    {
        float rho = MathF.Exp(lp - old);
        float lo = 1f - p.EpsilonLow, hi = 1f + p.EpsilonHigh;
        bool below = rho < lo, above = rho > hi;
        float c2 = below ? lo : (above ? hi : rho);
        float l1 = rho * advantage, l2 = c2 * advantage;
        bool first = l1 <= l2;
        loss = -(first ? l1 : l2);
        dlp = first || (!below && !above) ? -advantage * rho : 0f;
        if (p.Beta != 0f)
        {
            float d = refLogp - lp, ed = MathF.Exp(d);
            loss += (ed - d - 1f) * p.Beta;
            dlp += p.Beta * (1f - ed);
        }
    }
}
