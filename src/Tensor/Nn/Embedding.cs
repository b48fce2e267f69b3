namespace NativeReasoner.Nn;

/// <summary>
/// A lookup table of <paramref name="num"/> vectors of size <paramref name="dim"/> (torch.nn.Embedding):
/// ids of any shape → ids.shape + [dim]. <see cref="Weight"/> [num, dim] is initialised N(0, 1) from
/// <paramref name="gen"/>, as PyTorch.
/// </summary>
public sealed class Embedding : Module
{
    public int NumEmbeddings { get; }
    public int EmbeddingDim { get; }
    public Parameter Weight { get; }

    public Embedding(int num, int dim, Generator gen, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(num);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        ArgumentNullException.ThrowIfNull(gen);
        NumEmbeddings = num;
        EmbeddingDim = dim;
        Weight = RegisterParameter("weight", Parameter.FromOwned(Tensor.Randn([num, dim], gen, 1f, device)));
    }

    /// <summary>ids: int64 or int32, every id in [0, num) → ids.shape + [dim].</summary>
    public override Tensor Forward(Tensor ids) => Functional.Embedding(ids, Weight);

    public override string ToString() => $"Embedding(num={NumEmbeddings}, dim={EmbeddingDim})";
}
