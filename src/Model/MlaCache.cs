// Source: DeepSeek-V2 (arXiv:2405.04434) §2.1 compressed KV cache; official DeepSeek-V3 inference/model.py MLA (absorb
//         mode kv_cache, pe_cache).
namespace NativeReasoner.Model;

/// <summary>
/// The compressed MLA cache of a batch: per layer, per sequence, per position the RMS-normalised latent
/// c_kv (kv_lora_rank values) followed, in a second tensor, by the already-rotated shared RoPE key k_pe
/// (qk_rope_head_dim values) — kv_lora_rank + qk_rope_head_dim floats per token per layer (deepseek-v3-notes 10:
/// normalised latent, rotated k_pe). Each sequence has its own length, so a batch can hold prompts of
/// different lengths. Both live in one tensor per layer, [B, capacity, kv_lora_rank + qk_rope_head_dim] (the layout
/// FlashMLA's decode kernel reads, so <c>Functional.MlaDecodeAttention</c> takes it as is); <see cref="Latent"/> and
/// <see cref="RopeKey"/> are views of it. The tensors belong to no scope; dispose the cache.
/// </summary>
public sealed class MlaCache : IKvCache
{
    /// <summary>Per layer [B, capacity, kv_lora_rank + qk_rope_head_dim]: the latent, then the rotated RoPE
    /// key.</summary>
    public Tensor[] Entries { get; }

    /// <summary>Per layer [B, capacity, kv_lora_rank] (a view of <see cref="Entries"/>).</summary>
    public Tensor[] Latent { get; }

    /// <summary>Per layer [B, capacity, qk_rope_head_dim] (a view of <see cref="Entries"/>).</summary>
    public Tensor[] RopeKey { get; }

    /// <summary>Filled positions of each sequence.</summary>
    public int[] Lengths { get; }

    public int Batch { get; }
    public int Capacity { get; }
    public int Layers => Latent.Length;
    public int KvLoraRank { get; }
    public int RopeDim { get; }

    public MlaCache(DeepseekV3Config c, int batch, int capacity, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Batch = batch;
        Capacity = capacity;
        KvLoraRank = c.KvLoraRank;
        RopeDim = c.QkRopeHeadDim;
        Lengths = new int[batch];
        Entries = new Tensor[c.NumHiddenLayers];
        Latent = new Tensor[c.NumHiddenLayers];
        RopeKey = new Tensor[c.NumHiddenLayers];
        using (TensorScope.Suspend())
            for (int l = 0; l < c.NumHiddenLayers; l++)
            {
                Entries[l] = Tensor.Zeros([batch, capacity, c.KvLoraRank + c.QkRopeHeadDim], Kernels.DType.Float32,
                    device);
                Latent[l] = Entries[l].Narrow(2, 0, c.KvLoraRank);
                RopeKey[l] = Entries[l].Narrow(2, c.KvLoraRank, c.QkRopeHeadDim);
            }
    }

    /// <summary>Bytes the cache stores per token: layers × (kv_lora_rank + qk_rope_head_dim) × 4 (fp32).</summary>
    public long BytesPerToken => (long)Layers * (KvLoraRank + RopeDim) * sizeof(float);

    /// <summary>Bytes held by the latent and RoPE-key tensors of every layer.</summary>
    public long BytesAllocated => (long)Batch * Capacity * BytesPerToken;

    /// <summary>Bytes per token for a config: the figure the generation report prints.</summary>
    public static long BytesPerTokenFor(DeepseekV3Config c) => (long)c.NumHiddenLayers * c.CacheWidthPerLayer * sizeof(float);

    /// <summary>
    /// Stores S new entries of layer l for every sequence b at positions starts[b] … starts[b]+S−1.
    /// latent: [B, S, kv_lora_rank], ropeKey: [B, S, r].
    /// </summary>
    public void Write(int layer, Tensor latent, Tensor ropeKey, ReadOnlySpan<int> starts) =>
        Write(layer, latent, ropeKey, starts, CacheRows.Identity(latent.Shape[0]));

    /// <summary>
    /// Stores S new entries of layer l: input row i goes to cache row rows[i] at positions starts[i] … starts[i]+S−1
    /// (a decode step over some of the cache's sequences). latent: [n, S, kv_lora_rank], ropeKey: [n, S, r].
    /// </summary>
    public void Write(int layer, Tensor latent, Tensor ropeKey, ReadOnlySpan<int> starts, ReadOnlySpan<int> rows)
    {
        int n = latent.Shape[0], s = latent.Shape[1];
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();   // frees the views made here
        for (int i = 0; i < n; i++)
            if (starts[i] + s > Capacity)
                throw new InvalidOperationException($"MLA cache overflow: sequence {rows[i]} needs {starts[i] + s} " +
                    $"positions, capacity is {Capacity}");
        if (n == Batch && CacheRows.IsIdentity(rows) && CacheRows.AllEqual(starts))
        {
            // The common case (prefill, or decode of equally long sequences): one strided copy per tensor.
            Latent[layer].Narrow(1, starts[0], s).CopyFrom_(latent);
            RopeKey[layer].Narrow(1, starts[0], s).CopyFrom_(ropeKey);
            return;
        }
        for (int i = 0; i < n; i++)
        {
            Latent[layer].Narrow(0, rows[i], 1).Narrow(1, starts[i], s).CopyFrom_(latent.Narrow(0, i, 1));
            RopeKey[layer].Narrow(0, rows[i], 1).Narrow(1, starts[i], s).CopyFrom_(ropeKey.Narrow(0, i, 1));
        }
    }

    public void Dispose()
    {
        foreach (var t in Latent) t.Dispose();
        foreach (var t in RopeKey) t.Dispose();
        foreach (var t in Entries) t.Dispose();
    }
}
