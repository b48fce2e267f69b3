using NativeReasoner.Nn;

namespace NativeReasoner.Model.Dense;

/// <summary>The "model." part of a dense checkpoint: embed_tokens, layers, norm (no head).</summary>
public sealed class DenseModel : Module
{
    public TokenEmbedding EmbedTokens { get; }
    public ModuleList<DenseDecoderLayer> Layers { get; }
    public RmsNormLayer Norm { get; }

    public DenseModel(DenseConfig c, Generator gen, Device? device = null)
    {
        EmbedTokens = RegisterModule("embed_tokens",
            new TokenEmbedding(c.VocabSize, c.HiddenSize, gen, (float)c.InitializerRange, device));
        Layers = RegisterModule("layers", new ModuleList<DenseDecoderLayer>());
        for (int l = 0; l < c.NumHiddenLayers; l++) Layers.Add(new DenseDecoderLayer(c, l, gen, device));
        Norm = RegisterModule("norm", new RmsNormLayer(c.HiddenSize, (float)c.RmsNormEps, device));
    }
}

/// <summary>
/// A dense decoder-only language model (Llama / Qwen2 / Qwen3, after HF's *ForCausalLM) with HF parameter names
/// (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, …, model.norm.weight, lm_head.weight — the
/// last absent when tie_word_embeddings). Run forwards inside a <see cref="TensorScope"/>.
/// </summary>
public sealed class DenseForCausalLM : Module, ICausalLM
{
    public DenseConfig Config { get; }
    public DenseModel Model { get; }
    /// <summary>lm_head; null when tie_word_embeddings (the embedding table is the head).</summary>
    public Linear? LmHead { get; }
    public RotateHalfRope Rotary { get; }

    public DenseForCausalLM(DenseConfig config, Generator? gen = null, Device? device = null)
    {
        Config = config.Validate();
        gen ??= new Generator(0);
        Model = RegisterModule("model", new DenseModel(config, gen, device));
        if (!config.TieWordEmbeddings)
            LmHead = RegisterModule("lm_head", new Linear(config.HiddenSize, config.VocabSize, false, gen, device));
        Rotary = new RotateHalfRope(config.Rope, config.HeadDim, device);
    }

    ICausalLMConfig ICausalLM.Config => Config;

    private Tensor HeadWeight => LmHead?.Weight ?? Model.EmbedTokens.Weight;

    public Device Device => HeadWeight.Device;

    private void CheckIds(Tensor inputIds, IKvCache? cache, string name)
    {
        if (inputIds.Rank != 2) throw new ArgumentException($"input_ids must be [B, {name}], got " +
            $"{Tensor.FormatShape(inputIds.Shape)}");
        if (cache != null && cache.Batch != inputIds.Shape[0])
            throw new ArgumentException($"cache holds {cache.Batch} sequences, input has {inputIds.Shape[0]}");
    }

    private static GqaKvCache AsGqa(IKvCache cache) => cache as GqaKvCache
        ?? throw new ArgumentException($"a dense model reads a GQA K/V cache, got a {cache.GetType().Name} (make it " +
            $"with CreateCache)");

    /// <summary>Causal forward of every position: int64 [B, T] → logits [B, T, V].</summary>
    public override Tensor Forward(Tensor inputIds) => Forward(inputIds, null);

    /// <summary>
    /// Causal forward of positions 0..T−1: int64 [B, T] → logits [B, T, V]. With a cache (a prefill), also stores
    /// every layer's keys and values and sets each sequence's length to T.
    /// </summary>
    public Tensor Forward(Tensor inputIds, IKvCache? cache) => Prefill(inputIds, cache, allPositions: true, default);

    /// <summary>
    /// A generation prefill: <see cref="Forward(Tensor, IKvCache?)"/> with the head on one position per sequence
    /// (lastPositions[b], or T−1 for all when empty). int64 [B, T] → logits [B, 1, V].
    /// </summary>
    public Tensor ForwardLast(Tensor inputIds, IKvCache? cache, ReadOnlySpan<int> lastPositions) =>
        Prefill(inputIds, cache, allPositions: false, lastPositions);

    private Tensor Prefill(Tensor inputIds, IKvCache? cache, bool allPositions, ReadOnlySpan<int> lastPositions)
    {
        CheckIds(inputIds, cache, "T");
        int t = inputIds.Shape[1];
        LastPositions.Validate(lastPositions, inputIds.Shape[0], t);
        CausalLMChecks.RequireWithinContext(Config, t, "the forward");
        var kv = cache == null ? null : AsGqa(cache);
        var (cos, sin) = Rotary.Range(0, t);
        var h = Model.EmbedTokens.Forward(inputIds);
        foreach (var layer in Model.Layers) h = layer.Forward(h, cos, sin, kv);
        if (kv != null) Array.Fill(kv.Lengths, t);
        if (!allPositions) h = LastPositions.Select(h, lastPositions);                       // [B, 1, C]
        return Tensor.Linear(Model.Norm.Forward(h), HeadWeight);
    }

    /// <summary>
    /// S new tokens per sequence at positions cache.Lengths[b] … +S−1 (which then grows by S): int64 [B, S] →
    /// logits [B, S, V]. Inference only: runs without recording gradients.
    /// </summary>
    public Tensor ForwardCached(Tensor inputIds, IKvCache cache)
    {
        CheckIds(inputIds, cache, "S");
        return ForwardCached(inputIds, cache, CacheRows.Identity(inputIds.Shape[0]));
    }

    /// <summary>
    /// S new tokens for cache rows rows[i] at positions cache.Lengths[rows[i]] … +S−1: int64 [n, S] → logits
    /// [n, S, V]; the cache's other rows are untouched. Inference only.
    /// </summary>
    public Tensor ForwardCached(Tensor inputIds, IKvCache cache, ReadOnlySpan<int> rows) =>
        Cached(inputIds, cache, rows, allPositions: true);

    /// <summary>
    /// <see cref="ForwardCached(Tensor, IKvCache, ReadOnlySpan{int})"/> with the head on each sequence's last new
    /// position only: int64 [n, S] → logits [n, 1, V]. Inference only.
    /// </summary>
    public Tensor ForwardCachedLast(Tensor inputIds, IKvCache cache, ReadOnlySpan<int> rows) =>
        Cached(inputIds, cache, rows, allPositions: false);

    private Tensor Cached(Tensor inputIds, IKvCache cache, ReadOnlySpan<int> rows, bool allPositions)
    {
        if (inputIds.Rank != 2) throw new ArgumentException($"input_ids must be [n, S], got " +
            $"{Tensor.FormatShape(inputIds.Shape)}");
        var kv = AsGqa(cache);
        int b = inputIds.Shape[0], s = inputIds.Shape[1];
        CacheRows.Validate(rows, b, kv);
        using var noGrad = Tensor.NoGrad();
        var starts = new int[b];
        for (int i = 0; i < b; i++) starts[i] = kv.Lengths[rows[i]];
        CausalLMChecks.RequireWithinContext(Config, starts.Max() + s, "the decode step");
        var positions = new int[b * s];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < s; j++) positions[i * s + j] = starts[i] + j;
        var (cos, sin) = Rotary.For(positions);
        var h = Model.EmbedTokens.Forward(inputIds);
        foreach (var layer in Model.Layers) h = layer.ForwardCached(h, cos, sin, kv, starts, rows);
        for (int i = 0; i < b; i++) kv.Lengths[rows[i]] = starts[i] + s;
        if (!allPositions) h = LastPositions.Select(h, default);                             // [n, 1, C]
        return Tensor.Linear(Model.Norm.Forward(h), HeadWeight);
    }

    public IKvCache CreateCache(int batch, int capacity) => new GqaKvCache(Config, batch, capacity, Device);

    public void Save(string directory) => HfCheckpoint.Save(this, directory, Config.ToJson());
}
