namespace NativeReasoner.Nn;

/// <summary>
/// Root-mean-square normalisation over the last axis with a learned scale (torch.nn.RMSNorm):
/// y = x / √(mean(x²) + eps) · weight, with <see cref="Weight"/> [dim] initialised to ones.
/// </summary>
public sealed class RmsNorm : Module
{
    public int Dim { get; }
    public float Eps { get; }
    public Parameter Weight { get; }

    public RmsNorm(int dim, float eps = 1e-6f, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        ArgumentOutOfRangeException.ThrowIfNegative(eps);
        Dim = dim;
        Eps = eps;
        Weight = RegisterParameter("weight", Parameter.FromOwned(Tensor.Full([dim], 1f, device)));
    }

    /// <summary>x: [..., dim] → same shape.</summary>
    public override Tensor Forward(Tensor x) => Functional.RmsNorm(x, Weight, Eps);

    public override string ToString() => $"RmsNorm(dim={Dim}, eps={Eps})";
}
