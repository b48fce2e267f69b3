// Source: TRL trainer/sft_trainer.py with completion-only loss.
using NativeReasoner.Distributed;
using NativeReasoner.Optim;

namespace NativeReasoner.RL;

/// <summary>
/// Supervised fine-tuning loss on completion tokens only: each row is prompt ++ completion (right-padded;
/// causal attention keeps padding invisible), and the cross-entropy is the mean over completion tokens of
/// −log p(token | prefix) — prompt and padding positions are ignored.
/// </summary>
public static class SftLoss
{
    /// <summary>Mean completion-token cross-entropy (0-d, differentiable) over the batch.</summary>
    public static Tensor Compute(IPolicy policy, IReadOnlyList<(long[] Prompt, long[] Completion)> batch)
    {
        if (batch.Count == 0) throw new ArgumentException("SFT batch is empty");
        int B = batch.Count;
        int L = batch.Max(e => e.Prompt.Length + e.Completion.Length);
        if (L < 2) throw new ArgumentException("SFT examples need at least a prompt token and a completion token");
        var ids = new long[B * L];
        // targets[b, t] = token t+1 when it is a completion token, else ignored: [B, L−1]
        var targets = Enumerable.Repeat(-100L, B * (L - 1)).ToArray();
        for (int b = 0; b < B; b++)
        {
            var (p, c) = batch[b];
            if (p.Length == 0) throw new ArgumentException($"SFT example {b} has an empty prompt (it needs at least BOS)");
            Array.Copy(p, 0, ids, b * L, p.Length);
            Array.Copy(c, 0, ids, b * L + p.Length, c.Length);
            for (int j = 0; j < c.Length; j++) targets[b * (L - 1) + p.Length - 1 + j] = c[j];
        }
        using var logits = policy.Logits(Tensor.FromArray(ids, B, L));       // [B, L, V]
        int V = logits.Shape[2];
        using var shifted = logits.Narrow(1, 0, L - 1);                       // [B, L−1, V]
        using var flat = shifted.Reshape(B * (L - 1), V);                     // [B(L−1), V]
        return Functional.CrossEntropy(flat, Tensor.FromArray(targets, B * (L - 1)));
    }
}

/// <summary>
/// A plain SFT loop: shuffled mini-batches, AdamW, gradient clipping, warmup + cosine LR. Given a process group of
/// several ranks it trains data-parallel: each rank passes its share of the batch to <see cref="Step"/>, its loss is
/// weighted by its share of the batch's completion tokens, the gradients are summed over the ranks
/// (<see cref="GradientAllReducer"/>), and every rank takes the step one process would take on the whole batch.
/// </summary>
public sealed class SftTrainer : IDisposable
{
    private readonly IPolicy _policy;
    private readonly ITokenizer _tokenizer;
    private readonly PromptTemplate _template;
    private readonly AdamW _optimizer;
    private readonly ILrSchedule _schedule;
    private readonly float _maxGradNorm;
    private readonly IProcessGroup? _group;
    private readonly GradientAllReducer? _gradients;
    private int _steps;

    /// <param name="group">Data parallelism over this group's ranks (null or one rank: a single process).</param>
    public SftTrainer(IPolicy policy, ITokenizer tokenizer, PromptTemplate template, float learningRate, int totalSteps,
        int warmupSteps = 0, float weightDecay = 0f, float maxGradNorm = 1f, IProcessGroup? group = null)
    {
        _policy = policy;
        _tokenizer = tokenizer;
        _template = template;
        _optimizer = new AdamW(policy.Parameters(), learningRate, weightDecay: weightDecay);
        _schedule = new CosineDecay(learningRate, warmupSteps, Math.Max(1, totalSteps), 0.1f);
        _maxGradNorm = maxGradNorm;
        if (group is { Size: > 1 })
        {
            _group = group;
            // Every rank starts from rank 0's weights, whatever each built or loaded.
            GradientAllReducer.Broadcast(group, policy.Parameters());
            _gradients = new GradientAllReducer(group, policy.Parameters());
        }
    }

    /// <summary>Prompt ids (template applied) and completion ids (the completion text, then EOS).</summary>
    public (long[] Prompt, long[] Completion) Encode(SftExample e) =>
        (_tokenizer.EncodePrompt(_template.Format(e.Prompt)),
         _tokenizer.Encode(e.Completion).Append(_tokenizer.EosId).Select(i => (long)i).ToArray());

    /// <summary>
    /// One optimizer step on <paramref name="batch"/> (data-parallel: this rank's share of it); returns the loss
    /// (of the whole batch) before the step. A given <paramref name="learningRate"/> replaces the step schedule.
    /// </summary>
    public float Step(IReadOnlyList<SftExample> batch, float? learningRate = null)
    {
        using var scope = new TensorScope();
        var encoded = batch.Select(Encode).ToArray();
        // Data-parallel, a rank may hold none of a short batch (the end of an epoch): it adds nothing to the loss but
        // still joins the collectives. Alone, an empty batch is an error (SftLoss says so).
        var loss = encoded.Length > 0 || _group == null ? SftLoss.Compute(_policy, encoded) : null;
        if (_group != null)
        {
            // The whole batch's loss is the mean over all ranks' completion tokens: this rank's mean, weighted by its
            // share of them, summed over the ranks (the gradients by the all-reduce, the value here).
            long local = encoded.Sum(e => (long)e.Completion.Length);
            long global = _group.SumCount(local);
            if (loss != null) loss = loss * (float)((double)local / global);
        }
        loss?.Backward();
        _gradients?.AllReduceGradients();
        float norm = GradClip.ClipGradNorm(_policy.Parameters(), _maxGradNorm);
        _optimizer.LearningRate = learningRate ?? _schedule.LearningRate(_steps);
        _steps++;
        if (float.IsFinite(norm)) _optimizer.Step();
        _optimizer.ZeroGrad();
        return _group == null ? loss!.Item() : _group.SumValue(loss?.Item() ?? 0f);
    }

    /// <summary>The optimizer, for saving and restoring its state beside a checkpoint.</summary>
    public AdamW Optimizer => _optimizer;

    /// <summary>Optimizer steps taken (the schedule's position).</summary>
    public int Steps => _steps;

    /// <summary>Continues a run interrupted after <paramref name="steps"/> steps: the schedule goes on from there.</summary>
    public void ResumeAt(int steps)
    {
        if (steps < 0) throw new ArgumentException($"resume step must be ≥ 0, got {steps}");
        _steps = steps;
    }

    /// <summary>
    /// The order in which one epoch visits <paramref name="count"/> examples (Fisher–Yates from
    /// <paramref name="rng"/>): a resumed run redraws it from the epoch's saved generator state.
    /// </summary>
    public static int[] ShuffledOrder(int count, Generator rng)
    {
        var order = Enumerable.Range(0, count).ToArray();
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>One pass over the data in shuffled batches; returns the mean loss. <paramref name="afterStep"/> sees each step's loss (for logging).</summary>
    public float Epoch(IReadOnlyList<SftExample> data, int batchSize, Generator rng, Action<float>? afterStep = null)
    {
        var order = ShuffledOrder(data.Count, rng);
        double sum = 0;
        int n = 0;
        for (int s = 0; s < order.Length; s += batchSize)
        {
            float loss = Step(order.Skip(s).Take(batchSize).Select(i => data[i]).ToArray());
            afterStep?.Invoke(loss);
            sum += loss;
            n++;
        }
        return n == 0 ? float.NaN : (float)(sum / n);
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _gradients?.Dispose();
    }
}
