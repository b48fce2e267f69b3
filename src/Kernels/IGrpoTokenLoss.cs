using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels;

/// <summary>
/// A backend that computes GRPO's per-token loss and its logits gradient in one fused pass straight from the
/// policy logits (CudaKernels: kernels/cuda/grpo.cu; CpuKernels and IlgpuKernels share
/// <see cref="GrpoTokenObjective"/>). Not part of <see cref="IKernels"/>: a backend without it (the reference) gets
/// the same numbers from the composition log_softmax_gather → elementwise GRPO objective → autograd, and the
/// layers above ask for this capability (<c>kernels is IGrpoTokenLoss</c>) instead of naming a backend type.
/// </summary>
public unsafe interface IGrpoTokenLoss
{
    /// <summary>
    /// Per row r of the flattened [rows, V] logits (z = logits[r] · InvTemperature, logp = z[ids[r]] − logsumexp(z)):
    /// <code>
    /// ρ          = exp(logp − old[r])                      (old = null: ρ ≡ 1, the gradient still flows)
    /// l          = −min(ρ·A, clamp(ρ, 1 − EpsilonLow, 1 + EpsilonHigh)·A),  A = advantages[r / TokensPerSequence]
    /// l         += Beta · (exp(ref[r] − logp) − (ref[r] − logp) − 1)          when Beta ≠ 0
    /// loss[r]    = mask[r] · l
    /// dlogits[r] = weight[r] · mask[r] · ∂l/∂logp · InvTemperature · (onehot(ids[r]) − softmax(z))
    /// </code>
    /// mask and weight may be null (all ones); oldLogp may be null; refLogp is read only when Beta ≠ 0; logp and
    /// dlogits are optional outputs. Rows with mask 0 give exactly 0 loss and a zero gradient row. ids are trusted.
    /// </summary>
    void GrpoTokenLoss(float* logits, long* ids, float* oldLogp, float* refLogp, float* advantages, float* mask, float* weight,
        float* loss, float* logp, float* dlogits, int rows, int V, GrpoTokenLossOptions options);
}

/// <summary>
/// The hyper-parameters of <see cref="IGrpoTokenLoss.GrpoTokenLoss"/>, passed to the kernel by value (the layout of
/// <c>nr_rows_grpo_params</c> in kernels/cuda/grpo.cu on CUDA: four floats and an int, sequential).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GrpoTokenLossOptions
{
    /// <summary>1 / the sampling temperature (&gt; 0): logp = log_softmax(logits · InvTemperature)[id].</summary>
    public float InvTemperature;

    /// <summary>KL coefficient β (GrpoLossOptions.Beta); 0 drops the KL term and the reference log-probs are not read.</summary>
    public float Beta;

    /// <summary>ε_low: the ratio is clamped below at 1 − ε_low.</summary>
    public float EpsilonLow;

    /// <summary>ε_high (GrpoLossOptions.EffectiveEpsilonHigh): the ratio is clamped above at 1 + ε_high.</summary>
    public float EpsilonHigh;

    /// <summary>Rows (tokens) per sequence: row r takes the advantage advantages[r / TokensPerSequence].</summary>
    public int TokensPerSequence;

    public GrpoTokenLossOptions(float temperature, float beta, float epsilonLow, float epsilonHigh, int tokensPerSequence)
    {
        if (!(temperature > 0f) || float.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), $"temperature must be positive and finite, got {temperature}");
        if (!(epsilonLow >= 0f) || !(epsilonHigh >= 0f))
            throw new ArgumentOutOfRangeException(nameof(epsilonLow), $"epsilons must be ≥ 0, got {epsilonLow} / {epsilonHigh}");
        ArgumentOutOfRangeException.ThrowIfLessThan(tokensPerSequence, 1);
        InvTemperature = 1f / temperature;
        Beta = beta;
        EpsilonLow = epsilonLow;
        EpsilonHigh = epsilonHigh;
        TokensPerSequence = tokensPerSequence;
    }
}

