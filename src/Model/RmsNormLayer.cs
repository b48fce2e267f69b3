// Source: RMSNorm (arXiv:1910.07467) as HF's DeepseekV3RMSNorm (fp32 normalisation).
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// y = w ⊙ x / sqrt(mean(x²) + eps) over the last axis; the weight is saved as "weight" and starts at ones
/// (input_layernorm, post_attention_layernorm, q_a_layernorm, kv_a_layernorm, model.norm).
/// </summary>
public sealed class RmsNormLayer : Module
{
    public Parameter Weight { get; }
    public float Eps { get; }

    public RmsNormLayer(int dim, float eps, Device? device = null)
    {
        Eps = eps;
        Weight = RegisterParameter("weight", ModelParameters.Constant([dim], 1f, device));
    }

    /// <summary>x: [..., dim] → [..., dim].</summary>
    public override Tensor Forward(Tensor x) => Functional.RmsNorm(x, Weight, Eps);
}
