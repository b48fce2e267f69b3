// Source: PyTorch DistributedDataParallel's gradient bucketing (Li et al., arXiv:2006.15704), without its
// backward hooks: buckets are all-reduced after backward, each started as soon as it is packed.
using NativeReasoner.Nn;

namespace NativeReasoner.Distributed;

/// <summary>
/// Data parallelism's gradient exchange: after every rank's backward on its share of the batch, the gradients are
/// summed over the ranks, so every rank takes the same optimizer step. Parameters go into buckets of about
/// <c>bucketBytes</c> (in reverse order, the order backward finishes them); each bucket is one float32 host buffer,
/// allocated once, holding the gradients and one flag per parameter — 1 where this rank has a gradient. A
/// parameter no rank touched (an expert no token was routed to) keeps a null gradient, as it would in one process
/// over the whole batch, so AdamW skips it the same way; one touched anywhere gets the sum, zeros standing in for
/// the ranks without one. The caller weights each rank's loss so that the sum is the full batch's gradient (for a
/// mean over tokens: local tokens / global tokens).
/// </summary>
public sealed unsafe class GradientAllReducer : IDisposable
{
    public const long DefaultBucketBytes = 25L << 20;

    private readonly IProcessGroup _group;
    private readonly Parameter[][] _buckets;
    private readonly Tensor[] _flat;          // per bucket: [Σ numel + count] float32, host
    private readonly IWork[] _pending;

    /// <summary>Bytes each rank hands to the all-reduce per step (gradients and flags).</summary>
    public long BytesPerStep { get; }

    public int BucketCount => _buckets.Length;

    public GradientAllReducer(IProcessGroup group, IEnumerable<Parameter> parameters,
        long bucketBytes = DefaultBucketBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketBytes, 4L);
        _group = group;
        var trainable = parameters.Where(p => p.RequiresGrad).Reverse().ToList();
        foreach (var p in trainable)
            if (p.DType != DType.Float32)
                throw new ProcessGroupException($"data parallelism trains float32 parameters; '{p.Name}' is {p.DType}");
        var buckets = new List<Parameter[]>();
        var current = new List<Parameter>();
        long bytes = 0;
        foreach (var p in trainable)
        {
            if (current.Count > 0 && bytes + 4 * p.Numel > bucketBytes)
            {
                buckets.Add(current.ToArray());
                current.Clear();
                bytes = 0;
            }
            current.Add(p);
            bytes += 4 * p.Numel;
        }
        if (current.Count > 0) buckets.Add(current.ToArray());
        _buckets = buckets.ToArray();
        _flat = _buckets
            .Select(b => Tensor.Zeros([checked((int)(b.Sum(p => p.Numel) + b.Length))], DType.Float32, Device.Cpu)
                .DetachFromScopes())
            .ToArray();
        _pending = new IWork[_buckets.Length];
        BytesPerStep = _flat.Sum(f => f.Numel * 4);
    }

    /// <summary>Sums every parameter's gradient over the ranks (all ranks call it after their backward).</summary>
    public void AllReduceGradients()
    {
        if (_group.Size == 1) return;
        for (int b = 0; b < _buckets.Length; b++)
        {
            Pack(b);
            _pending[b] = _group.AllReduceAsync(_flat[b]);
        }
        for (int b = 0; b < _buckets.Length; b++)
        {
            _pending[b].Wait();
            _pending[b] = null!;
            Unpack(b);
        }
    }

    private void Pack(int b)
    {
        var ps = _buckets[b];
        float* data = _flat[b].Data;
        float* flags = data + (_flat[b].Numel - ps.Length);
        long offset = 0;
        for (int i = 0; i < ps.Length; i++)
        {
            var p = ps[i];
            var span = new Span<float>(data + offset, checked((int)p.Numel));
            if (p.Grad is { } g)
            {
                CopyOut(g, span);
                flags[i] = 1;
            }
            else
            {
                span.Clear();
                flags[i] = 0;
            }
            offset += p.Numel;
        }
    }

    private void Unpack(int b)
    {
        var ps = _buckets[b];
        float* data = _flat[b].Data;
        float* flags = data + (_flat[b].Numel - ps.Length);
        long offset = 0;
        for (int i = 0; i < ps.Length; i++)
        {
            var p = ps[i];
            if (flags[i] > 0)
            {
                var bytes = new ReadOnlySpan<byte>(data + offset, checked((int)(4 * p.Numel)));
                if (p.Grad is not { IsContiguous: true } g)
                {
                    // The backward engine creates gradients outside every scope; this one must outlive the step too.
                    g = Tensor.Zeros(p.Shape, DType.Float32, p.Device).DetachFromScopes();
                    p.Grad = g;
                }
                g.CopyFromHost(bytes);
            }
            offset += p.Numel;
        }
    }

    private static void CopyOut(Tensor grad, Span<float> destination)
    {
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(destination);
        if (grad.IsContiguous && grad.DType == DType.Float32)
        {
            grad.CopyToHost(bytes);
            return;
        }
        // A strided or 16-bit gradient (none that the engine makes today): read through a converted copy.
        grad.ToArray().CopyTo(destination);
    }

    /// <summary>
    /// Makes every rank's tensors (parameters, buffers such as the router bias) equal to <paramref name="root"/>'s,
    /// one broadcast per tensor: the start of a data-parallel run, and the guard after a replicated step.
    /// </summary>
    public static void Broadcast(IProcessGroup group, IEnumerable<Tensor> tensors, int root = 0)
    {
        if (group.Size == 1) return;
        var works = new List<IWork>();
        foreach (var t in tensors)
        {
            if (!t.IsContiguous) throw new ProcessGroupException($"Broadcast: '{t.Name}' is not contiguous");
            works.Add(group.BroadcastAsync(t, root));
        }
        foreach (var w in works) w.Wait();
    }

    public void Dispose()
    {
        foreach (var f in _flat) f.Dispose();
    }
}
