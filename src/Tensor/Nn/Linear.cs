namespace NativeReasoner.Nn;

/// <summary>
/// y = x · Wᵀ + b (torch.nn.Linear), with <see cref="Weight"/> of shape [outFeatures, inFeatures] and
/// <see cref="Bias"/> of shape [outFeatures]. Initialisation as PyTorch's default: both drawn from
/// U(−1/√inFeatures, 1/√inFeatures), the weight first, then the bias, from <paramref name="gen"/>,
/// on <paramref name="device"/> (default: <see cref="Device.Default"/>).
/// </summary>
public sealed class Linear : Module
{
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public Linear(int inFeatures, int outFeatures, bool bias, Generator gen, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        ArgumentNullException.ThrowIfNull(gen);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        // kaiming_uniform_(a=√5) on [out, in] reduces to this bound; PyTorch uses the same one for the bias.
        float bound = (float)(1.0 / Math.Sqrt(inFeatures));
        Weight = RegisterParameter("weight", Parameter.FromOwned(Tensor.Rand([outFeatures, inFeatures], gen, -bound, bound, device)));
        if (bias) Bias = RegisterParameter("bias", Parameter.FromOwned(Tensor.Rand([outFeatures], gen, -bound, bound, device)));
    }

    /// <summary>x: [..., inFeatures] → [..., outFeatures].</summary>
    public override Tensor Forward(Tensor x) => Tensor.Linear(x, Weight, Bias);

    public override string ToString() => $"Linear(in={InFeatures}, out={OutFeatures}, bias={Bias != null})";
}
