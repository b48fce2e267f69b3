// Source: torch.nn.Embedding as HF's model.embed_tokens.
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>model.embed_tokens: a [vocab, hidden] table looked up by int64 ids.</summary>
public sealed class TokenEmbedding : Module
{
    public Parameter Weight { get; }

    public TokenEmbedding(int vocab, int dim, Generator gen, float std, Device? device = null)
    {
        Weight = RegisterParameter("weight", ModelParameters.Normal([vocab, dim], gen, std, device));
    }

    /// <summary>ids: int64 [...] → [..., dim].</summary>
    public override Tensor Forward(Tensor ids) => Functional.Embedding(ids, Weight);
}
