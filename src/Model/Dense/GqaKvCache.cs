// Source: HF transformers cache_utils.py DynamicCache layout [B, Hkv, T, D] with per-sequence lengths.
namespace NativeReasoner.Model.Dense;

/// <summary>
/// The K/V cache of grouped-query attention: per layer K and V of shape [B, Hkv, capacity, head_dim] (keys
/// already rotated, in <see cref="RotateHalfRope"/>'s interleaved order), and each sequence's own length.
/// 2 × layers × Hkv × head_dim floats per token. The tensors belong to no scope; dispose the cache.
/// </summary>
public sealed class GqaKvCache : IKvCache
{
    /// <summary>Per layer [B, Hkv, capacity, head_dim].</summary>
    public Tensor[] Keys { get; }

    /// <summary>Per layer [B, Hkv, capacity, head_dim].</summary>
    public Tensor[] Values { get; }

    public int[] Lengths { get; }
    public int Batch { get; }
    public int Capacity { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public int Layers => Keys.Length;

    public GqaKvCache(DenseConfig c, int batch, int capacity, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Batch = batch;
        Capacity = capacity;
        KvHeads = c.NumKeyValueHeads;
        HeadDim = c.HeadDim;
        Lengths = new int[batch];
        Keys = new Tensor[c.NumHiddenLayers];
        Values = new Tensor[c.NumHiddenLayers];
        using (TensorScope.Suspend())
            for (int l = 0; l < c.NumHiddenLayers; l++)
            {
                Keys[l] = Tensor.Zeros([batch, KvHeads, capacity, HeadDim], Kernels.DType.Float32, device);
                Values[l] = Tensor.Zeros([batch, KvHeads, capacity, HeadDim], Kernels.DType.Float32, device);
            }
    }

    public long BytesPerToken => 2L * Layers * KvHeads * HeadDim * sizeof(float);

    public long BytesAllocated => (long)Batch * Capacity * BytesPerToken;

    /// <summary>
    /// Stores S new entries of layer l for every sequence b at positions starts[b] … starts[b]+S−1.
    /// keys, values: [B, Hkv, S, head_dim].
    /// </summary>
    public void Write(int layer, Tensor keys, Tensor values, ReadOnlySpan<int> starts) =>
        Write(layer, keys, values, starts, CacheRows.Identity(keys.Shape[0]));

    /// <summary>
    /// Stores S new entries of layer l: input row i goes to cache row rows[i] at positions starts[i] … starts[i]+S−1
    /// (a decode step over some of the cache's sequences). keys, values: [n, Hkv, S, head_dim].
    /// </summary>
    public void Write(int layer, Tensor keys, Tensor values, ReadOnlySpan<int> starts, ReadOnlySpan<int> rows)
    {
        int n = keys.Shape[0], s = keys.Shape[2];
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();   // frees the views made here
        for (int i = 0; i < n; i++)
            if (starts[i] + s > Capacity)
                throw new InvalidOperationException($"KV cache overflow: sequence {rows[i]} needs {starts[i] + s} " +
                    $"positions, capacity is {Capacity}");
        if (n == Batch && CacheRows.IsIdentity(rows) && CacheRows.AllEqual(starts))
        {
            Keys[layer].Narrow(2, starts[0], s).CopyFrom_(keys);
            Values[layer].Narrow(2, starts[0], s).CopyFrom_(values);
            return;
        }
        for (int i = 0; i < n; i++)
        {
            Keys[layer].Narrow(0, rows[i], 1).Narrow(2, starts[i], s).CopyFrom_(keys.Narrow(0, i, 1));
            Values[layer].Narrow(0, rows[i], 1).Narrow(2, starts[i], s).CopyFrom_(values.Narrow(0, i, 1));
        }
    }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
