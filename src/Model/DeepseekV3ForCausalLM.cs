using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// DeepSeek-V3 with its language-model head, parameters named exactly as in Hugging Face checkpoints
/// (model.embed_tokens.weight, model.layers.N.…, model.norm.weight, lm_head.weight).
/// Run forward passes inside a <see cref="TensorScope"/>: activations are freed with it.
/// </summary>
public sealed class DeepseekV3ForCausalLM : Module, ICausalLM
{
    public DeepseekV3Config Config { get; }
    public DeepseekV3Model Model { get; }
    /// <summary>lm_head; null when tie_word_embeddings (the embedding table is the head).</summary>
    public Linear? LmHead { get; }
    public RotaryEmbedding Rotary { get; }

    public DeepseekV3ForCausalLM(DeepseekV3Config config, Generator? gen = null, Device? device = null)
    {
        Config = config.Validate();
        gen ??= new Generator(0);
        Model = RegisterModule("model", new DeepseekV3Model(config, gen, device));
        if (!config.TieWordEmbeddings)
            LmHead = RegisterModule("lm_head", new Linear(config.HiddenSize, config.VocabSize, false, gen, device));
        Rotary = new RotaryEmbedding(config, device);
    }

    ICausalLMConfig ICausalLM.Config => Config;

    public Device Device => HeadWeight.Device;

    private Tensor HeadWeight => LmHead?.Weight ?? Model.EmbedTokens.Weight;

    /// <summary>The MoE blocks, in layer order.</summary>
    public IEnumerable<MoeLayer> MoeLayers => Model.Layers.Where(l => l.Moe != null).Select(l => l.Moe!);

    /// <summary>Attaches a routing-replay tape to every MoE gate (MoE layer ordinals 0, 1, …); null detaches.</summary>
    public void AttachRoutingTape(RoutingTape? tape)
    {
        int ordinal = 0;
        foreach (var m in MoeLayers) m.Gate.AttachTape(tape, ordinal++);
    }

    /// <summary>
    /// Causal forward of every position. inputIds: int64 [B, T] → logits [B, T, V]. With a cache (a
    /// prefill), also stores the compressed entries of positions 0..T−1 and sets each sequence's length to T.
    /// </summary>
    public Tensor Forward(Tensor inputIds, MlaCache? cache) => Prefill(inputIds, cache, allPositions: true, default);

    /// <summary>
    /// A generation prefill: <see cref="Forward(Tensor, MlaCache?)"/> with the head on one position per sequence
    /// (lastPositions[b], or T−1 for all when empty). int64 [B, T] → logits [B, 1, V].
    /// </summary>
    public Tensor ForwardLast(Tensor inputIds, MlaCache? cache, ReadOnlySpan<int> lastPositions) =>
        Prefill(inputIds, cache, allPositions: false, lastPositions);

    private Tensor Prefill(Tensor inputIds, MlaCache? cache, bool allPositions, ReadOnlySpan<int> lastPositions)
    {
        if (inputIds.Rank != 2) throw new ArgumentException($"input_ids must be [B, T], got {Tensor.FormatShape(inputIds.Shape)}");
        int b = inputIds.Shape[0], t = inputIds.Shape[1];
        if (cache != null && cache.Batch != b) throw new ArgumentException($"cache holds {cache.Batch} sequences, input has {b}");
        LastPositions.Validate(lastPositions, b, t);
        var (cos, sin) = Rotary.Range(0, t);
        var h = Model.EmbedTokens.Forward(inputIds);
        foreach (var layer in Model.Layers) h = layer.Forward(h, cos, sin, cache);
        if (cache != null) Array.Fill(cache.Lengths, t);
        if (!allPositions) h = LastPositions.Select(h, lastPositions);                       // [B, 1, C]
        return Tensor.Linear(Model.Norm.Forward(h), HeadWeight);
    }

    /// <summary>Causal forward of every position: int64 [B, T] → logits [B, T, V].</summary>
    public override Tensor Forward(Tensor inputIds) => Forward(inputIds, null);

    /// <summary>
    /// S new tokens per sequence through the absorbed attention and the compressed cache: sequence b's
    /// tokens go to positions cache.Lengths[b] … +S−1, which then grows by S. inputIds: int64 [B, S] →
    /// logits [B, S, V]. Inference only: runs without recording gradients.
    /// </summary>
    public Tensor ForwardCached(Tensor inputIds, MlaCache cache)
    {
        if (inputIds.Rank != 2)
            throw new ArgumentException($"input_ids must be [B, S], got {Tensor.FormatShape(inputIds.Shape)}");
        int b = inputIds.Shape[0];
        if (cache.Batch != b) throw new ArgumentException($"cache holds {cache.Batch} sequences, input has {b}");
        return ForwardCached(inputIds, cache, CacheRows.Identity(b));
    }

    /// <summary>
    /// S new tokens for cache rows rows[i] at positions cache.Lengths[rows[i]] … +S−1 (which then grows by S):
    /// int64 [n, S] → logits [n, S, V]; the cache's other rows are untouched. Inference only.
    /// </summary>
    public Tensor ForwardCached(Tensor inputIds, MlaCache cache, ReadOnlySpan<int> rows) =>
        Cached(inputIds, cache, rows, allPositions: true);

    /// <summary>
    /// <see cref="ForwardCached(Tensor, MlaCache, ReadOnlySpan{int})"/> with the head on each sequence's last new
    /// position only: int64 [n, S] → logits [n, 1, V]. Inference only.
    /// </summary>
    public Tensor ForwardCachedLast(Tensor inputIds, MlaCache cache, ReadOnlySpan<int> rows) =>
        Cached(inputIds, cache, rows, allPositions: false);

    private Tensor Cached(Tensor inputIds, MlaCache cache, ReadOnlySpan<int> rows, bool allPositions)
    {
        if (inputIds.Rank != 2)
            throw new ArgumentException($"input_ids must be [n, S], got {Tensor.FormatShape(inputIds.Shape)}");
        int b = inputIds.Shape[0], s = inputIds.Shape[1];
        CacheRows.Validate(rows, b, cache);
        using var noGrad = Tensor.NoGrad();
        var starts = new int[b];
        for (int i = 0; i < b; i++) starts[i] = cache.Lengths[rows[i]];
        var positions = new int[b * s];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < s; j++) positions[i * s + j] = starts[i] + j;
        var (cos, sin) = Rotary.For(positions);
        var h = Model.EmbedTokens.Forward(inputIds);
        foreach (var layer in Model.Layers) h = layer.ForwardCached(h, cos, sin, cache, starts, rows);
        for (int i = 0; i < b; i++) cache.Lengths[rows[i]] = starts[i] + s;
        if (!allPositions) h = LastPositions.Select(h, default);                             // [n, 1, C]
        return Tensor.Linear(Model.Norm.Forward(h), HeadWeight);
    }

    /// <summary>A cache sized for this model.</summary>
    public MlaCache CreateCache(int batch, int capacity) => new(Config, batch, capacity, HeadWeight.Device);

    IKvCache ICausalLM.CreateCache(int batch, int capacity) => CreateCache(batch, capacity);

    Tensor ICausalLM.Forward(Tensor inputIds, IKvCache? cache) =>
        Forward(inputIds, cache == null ? null : AsMla(cache));

    Tensor ICausalLM.ForwardCached(Tensor inputIds, IKvCache cache) => ForwardCached(inputIds, AsMla(cache));

    Tensor ICausalLM.ForwardLast(Tensor inputIds, IKvCache? cache, ReadOnlySpan<int> lastPositions) =>
        ForwardLast(inputIds, cache == null ? null : AsMla(cache), lastPositions);

    Tensor ICausalLM.ForwardCachedLast(Tensor inputIds, IKvCache cache, ReadOnlySpan<int> rows) =>
        ForwardCachedLast(inputIds, AsMla(cache), rows);

    Tensor ICausalLM.ForwardCached(Tensor inputIds, IKvCache cache, ReadOnlySpan<int> rows) =>
        ForwardCached(inputIds, AsMla(cache), rows);

    private static MlaCache AsMla(IKvCache cache) => cache as MlaCache
        ?? throw new ArgumentException(
            $"DeepSeek-V3 reads a compressed MLA cache, got a {cache.GetType().Name} (make it with CreateCache)");

    /// <summary>Writes config.json and the weights under HF names (<see cref="DeepseekV3Checkpoint.Save"/>).</summary>
    public void Save(string directory) => DeepseekV3Checkpoint.Save(this, directory);

    // ------------------------------------------------------------------ load balancing

    /// <summary>Sets α of the sequence-wise balance loss on every MoE layer (0 = off).</summary>
    public void SetBalanceLossAlpha(float alpha)
    {
        foreach (var m in MoeLayers) m.BalanceLossAlpha = alpha;
    }

    /// <summary>Sum of the MoE layers' balance losses of the last training forward, or null when off.</summary>
    public Tensor? BalanceLoss()
    {
        Tensor? total = null;
        foreach (var m in MoeLayers)
            if (m.LastBalanceLoss is { } l) total = total == null ? l : total + l;
        return total;
    }

    /// <summary>The aux-loss-free step: every MoE layer moves its biases by ±γ toward balanced load.</summary>
    public void UpdateRouterBiases(float gamma)
    {
        foreach (var m in MoeLayers) m.UpdateBias(gamma);
    }

    /// <summary>Per MoE layer (by layer index): tokens routed to each expert since the last bias update / reset.</summary>
    public IReadOnlyDictionary<int, long[]> ExpertLoad() =>
        Model.Layers.Where(l => l.Moe != null).ToDictionary(l => l.Index, l => (long[])l.Moe!.AccumulatedLoad.Clone());
}
