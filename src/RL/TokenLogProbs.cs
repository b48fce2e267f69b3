namespace NativeReasoner.RL;

/// <summary>
/// Per-token log-probabilities and entropies of sampled tokens under a policy's logits, at the sampling
/// temperature (TRL divides the logits by the temperature so that the ratio compares the distributions
/// the tokens were actually drawn from).
/// </summary>
public static class TokenLogProbs
{
    /// <summary>
    /// log softmax(logits / temperature)[ids] along the vocabulary: logits [B, T, V], ids [B, T] (int64 or
    /// int32) → [B, T], differentiable in the logits.
    /// </summary>
    public static Tensor Selected(Tensor logits, Tensor ids, float temperature = 1f)
    {
        if (logits.Rank != 3) throw new ArgumentException($"selected_logps: logits must be [B, T, V], got {Tensor.FormatShape(logits.Shape)}");
        int B = logits.Shape[0], T = logits.Shape[1];
        ids.Expect([B, T], "selected_logps: ids");
        if (!(temperature > 0f)) throw new ArgumentOutOfRangeException(nameof(temperature), $"temperature must be > 0, got {temperature}");
        // One fused pass per row (no [B, T, V] log-softmax or scaled copy is materialised).
        return Functional.LogSoftmaxGather(logits, ids, temperature);                          // [B, T]
    }

    /// <summary>
    /// Entropy −Σ p·log p of softmax(logits / temperature) per position: [B, T, V] → float[B·T], no grad
    /// (a logged metric only).
    /// </summary>
    public static float[] Entropy(Tensor logits, float temperature = 1f)
    {
        if (logits.Rank != 3) throw new ArgumentException($"entropy: logits must be [B, T, V], got {Tensor.FormatShape(logits.Shape)}");
        int V = logits.Shape[2];
        int rows = logits.Shape[0] * logits.Shape[1];
        using var noGrad = Tensor.NoGrad();
        using var scaled = logits / temperature;
        using var logp = scaled.LogSoftmax(-1);
        var lp = logp.ToArray();
        var result = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double h = 0;
            for (int v = 0; v < V; v++)
            {
                double l = lp[r * V + v];
                if (l > double.NegativeInfinity) h -= Math.Exp(l) * l;
            }
            result[r] = (float)h;
        }
        return result;
    }
}
