using System.Text.RegularExpressions;
using NativeReasoner.Model.Dense;
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// The weight bytes one token of a batch-1 decode step reads, as the model holds them (packed, 16-bit or fp32): every
/// weight once, except that the embedding table gives one row (the token's) unless it is also the tied head, and each
/// MoE layer reads only the top-k of its routed experts. Divided into the host's read bandwidth it gives the
/// bandwidth bound of decode (tokens/s no engine can pass while it streams its weights from memory once per token).
/// </summary>
public static partial class DecodeWeightTraffic
{
    /// <summary>Bytes per decoded token, split into the parts a decode step reads.</summary>
    /// <param name="Dense">Every weight read whole each token: attention, dense MLPs, shared experts, routers, norms,
    /// the head (the tied embedding included).</param>
    /// <param name="Routed">The top-k routed experts of every MoE layer (k of E experts' bytes).</param>
    /// <param name="EmbeddingRow">The token's row of an untied embedding table.</param>
    public readonly record struct Bytes(long Dense, long Routed, long EmbeddingRow)
    {
        public long Total => Dense + Routed + EmbeddingRow;
    }

    [GeneratedRegex(@"^(?<prefix>.+\.experts)\.(?<e>\d+)\.")]
    private static partial Regex RoutedExpert();

    private const string Embedding = "model.embed_tokens.weight";

    /// <summary>The bytes for <paramref name="model"/>; its config names the experts per token.</summary>
    public static Bytes PerToken(ICausalLM model)
    {
        int topK = model.Config switch
        {
            DeepseekV3Config c => c.NumExpertsPerTok,
            DenseConfig c => c.NumExpertsPerTok,
            _ => 0,
        };
        return PerToken((Module)model, topK);
    }

    /// <summary>
    /// The bytes for a module tree with HF parameter names: routed experts are the tensors under
    /// <c>….experts.{e}.</c>; an MoE layer of E experts reads k·(its experts' bytes)/E per token (its experts are
    /// equal in size). A model without a separate <c>lm_head.weight</c> reads its embedding table whole as the head.
    /// </summary>
    public static Bytes PerToken(Module model, int topK)
    {
        var state = model.StateDict();
        bool tied = !state.ContainsKey("lm_head.weight");
        long dense = 0, embeddingRow = 0;
        // Per MoE layer (the experts' name prefix): its routed bytes and how many experts it holds.
        var layers = new Dictionary<string, (long Bytes, HashSet<int> Experts)>(StringComparer.Ordinal);
        foreach (var (name, tensor) in state)
        {
            var m = RoutedExpert().Match(name);
            if (m.Success)
            {
                string prefix = m.Groups["prefix"].Value;
                if (!layers.TryGetValue(prefix, out var layer)) layer = (0, []);
                layer.Experts.Add(int.Parse(m.Groups["e"].Value, System.Globalization.CultureInfo.InvariantCulture));
                layers[prefix] = (layer.Bytes + tensor.StorageBytes, layer.Experts);
            }
            else if (name == Embedding && !tied) embeddingRow = tensor.StorageBytes / Math.Max(1, tensor.Shape[0]);
            else dense += tensor.StorageBytes;
        }
        if (layers.Count > 0 && topK <= 0)
            throw new ArgumentOutOfRangeException(nameof(topK), topK,
                $"the model has routed experts ({layers.Count} MoE layers): experts per token must be positive");
        long routed = 0;
        foreach (var (prefix, (bytes, experts)) in layers)
        {
            if (topK > experts.Count)
                throw new ArgumentOutOfRangeException(nameof(topK), topK,
                    $"{prefix} holds {experts.Count} experts, fewer than the {topK} experts per token");
            routed += bytes * topK / experts.Count;
        }
        return new Bytes(dense, routed, embeddingRow);
    }
}
