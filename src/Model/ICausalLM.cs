using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// The hyper-parameters of one causal language model family as read from (and written back to) a Hugging Face
/// config.json. Everything above src/Model that only needs to size, name or build a model goes through this.
/// </summary>
public interface ICausalLMConfig
{
    /// <summary>config.json's <c>model_type</c> (deepseek_v3, deepseek_v2, qwen2, llama, qwen3, qwen3_moe).</summary>
    string ModelType { get; }
    int VocabSize { get; }
    int HiddenSize { get; }
    int NumHiddenLayers { get; }
    int MaxPositionEmbeddings { get; }
    IReadOnlyList<long> EosTokenIds { get; }

    /// <summary>
    /// The config with the vocabulary widened to at least <paramref name="vocabSize"/> and the tokenizer's special ids.
    /// </summary>
    ICausalLMConfig ForTokenizer(int vocabSize, long eosId, long? bosId, long? padId);

    /// <summary>The config with another context length.</summary>
    ICausalLMConfig WithMaxPositionEmbeddings(int positions);

    /// <summary>A new model with freshly initialised weights.</summary>
    ICausalLM Build(Generator gen, Device? device = null);

    /// <summary>The config as HF config.json text.</summary>
    string ToJson();
}

/// <summary>
/// The inference cache of a batch: one entry per layer, per sequence, per position, and each sequence's own
/// filled length (so a batch can hold prompts of different lengths). Its layout belongs to the model that
/// made it (<see cref="ICausalLM.CreateCache"/>); the tensors belong to no scope, so dispose the cache.
/// </summary>
public interface IKvCache : IDisposable
{
    int Batch { get; }
    int Capacity { get; }

    /// <summary>Filled positions of each sequence (the next token of sequence b goes to position Lengths[b]).</summary>
    int[] Lengths { get; }

    /// <summary>Bytes the cache stores per token, over all layers.</summary>
    long BytesPerToken { get; }

    /// <summary>Bytes held by the cache's tensors (batch × capacity × <see cref="BytesPerToken"/>).</summary>
    long BytesAllocated { get; }
}

/// <summary>
/// A causal language model with its head: every family (DeepSeek-V3, Qwen2, Llama, Qwen3) implements it, and
/// generation, scoring, the RL policy and the CLI use nothing else. Run forwards inside a <see cref="TensorScope"/>.
/// </summary>
public interface ICausalLM : IDisposable
{
    ICausalLMConfig Config { get; }

    /// <summary>The device the weights live on (inputs must be moved there).</summary>
    Device Device { get; }

    bool IsTraining { get; }
    Module Train(bool on = true);
    Module Eval();

    /// <summary>Causal forward of every position: int64 ids [B, T] → logits [B, T, V], recorded for backward.</summary>
    Tensor Forward(Tensor inputIds);

    /// <summary>
    /// Causal forward of positions 0..T−1 (ids [B, T] → logits [B, T, V]); with a cache (a prefill) also stores
    /// every layer's entries for those positions and sets each sequence's length to T.
    /// </summary>
    Tensor Forward(Tensor inputIds, IKvCache? cache);

    /// <summary>
    /// A generation prefill: <see cref="Forward(Tensor, IKvCache?)"/> (the cache, when given, filled the same way)
    /// but with the vocabulary head run on one position per sequence — lastPositions[b], or T−1 for every sequence
    /// when the span is empty. ids [B, T] → logits [B, 1, V], equal to those rows of the full forward.
    /// </summary>
    Tensor ForwardLast(Tensor inputIds, IKvCache? cache, ReadOnlySpan<int> lastPositions);

    /// <summary>
    /// <see cref="ForwardCached(Tensor, IKvCache, ReadOnlySpan{int})"/> returning only each sequence's last new
    /// position's logits: ids [n, S] → logits [n, 1, V]. A serving prefill of S prompt tokens runs the head once.
    /// </summary>
    Tensor ForwardCachedLast(Tensor inputIds, IKvCache cache, ReadOnlySpan<int> rows);

    /// <summary>
    /// S new tokens per sequence after what the cache holds: sequence b's tokens go to positions
    /// cache.Lengths[b] … +S−1, which then grows by S. ids [B, S] → logits [B, S, V]. Inference only (no grad).
    /// </summary>
    Tensor ForwardCached(Tensor inputIds, IKvCache cache);

    /// <summary>
    /// S new tokens for some of the cache's sequences: input row i continues cache row rows[i] at positions
    /// cache.Lengths[rows[i]] … +S−1 (which then grows by S); the other rows are neither read nor changed. ids
    /// [n, S] → logits [n, S, V]; rows: n distinct cache rows, in any order. Inference only (no grad). A serving
    /// scheduler steps its running sequences this way while finished slots of the same cache sit idle.
    /// </summary>
    Tensor ForwardCached(Tensor inputIds, IKvCache cache, ReadOnlySpan<int> rows);

    /// <summary>
    /// A cache of this model's layout for <paramref name="batch"/> sequences of up to <paramref name="capacity"/>
    /// positions.
    /// </summary>
    IKvCache CreateCache(int batch, int capacity);

    IEnumerable<(string Name, Parameter Param)> NamedParameters();
    IEnumerable<Parameter> Parameters();
    IEnumerable<(string Name, Tensor Buffer)> NamedBuffers();
    void ZeroGrad();

    /// <summary>Writes config.json and the weights (F32, HF names) into <paramref name="directory"/>.</summary>
    void Save(string directory);
}

/// <summary>Checks shared by every family before running a forward.</summary>
public static class CausalLMChecks
{
    /// <summary>
    /// Throws when positions 0..<paramref name="positions"/>−1 would run past max_position_embeddings.
    /// </summary>
    public static void RequireWithinContext(ICausalLMConfig config, int positions, string what)
    {
        if (positions > config.MaxPositionEmbeddings)
            throw new ArgumentException(
                $"{what} needs {positions} positions, but the model's max_position_embeddings is " +
                    $"{config.MaxPositionEmbeddings} " +
                $"({config.ModelType}): shorten the prompt or lower max_new_tokens");
    }
}
