// Source: the forward of HF transformers' *ForCausalLM (full logits) and its cached prefill/decode.
namespace NativeReasoner.Model;

/// <summary>
/// Scoring a batch of token sequences: every position in one causal forward, or — to exercise the
/// inference path — a prefill of the first P tokens followed by one-token decode steps through the model's
/// cache (for DeepSeek-V3: the compressed MLA cache and the absorbed attention).
/// </summary>
public static class LogitsRunner
{
    /// <summary>
    /// ids: [B·T] row-major. Returns logits [B, T, V] (decodeFrom null) or, with decodeFrom = P, the logits
    /// of positions P..T−1 as [B, T−P, V], computed one token at a time after a prefill of P tokens.
    /// </summary>
    public static float[] Run(ICausalLM model, long[] ids, int batch, int length, int? decodeFrom = null)
    {
        if (ids.Length != batch * length) throw new ArgumentException($"{ids.Length} ids do not fill [{batch}, {length}]");
        long vocab = model.Config.VocabSize;
        foreach (var id in ids)
            if (id < 0 || id >= vocab) throw new ArgumentException($"token id {id} is outside the vocabulary [0, {vocab})");
        CausalLMChecks.RequireWithinContext(model.Config, length, $"scoring {length} tokens");
        var device = model.Device;
        using var noGrad = Tensor.NoGrad();
        if (decodeFrom is not { } p)
        {
            using var scope = new TensorScope();
            var input = Tensor.FromArray(ids, [batch, length]).To(device);
            return model.Forward(input, null).ToArray();
        }
        if (p < 1 || p > length) throw new ArgumentException($"--decode-from {p} must be in [1, {length}] (T = {length})");
        int v = model.Config.VocabSize;
        var result = new float[(long)batch * (length - p) * v];
        using var cache = model.CreateCache(batch, length);
        using (var scope = new TensorScope())
        {
            var prefix = new long[batch * p];
            for (int b = 0; b < batch; b++) Array.Copy(ids, b * length, prefix, b * p, p);
            model.Forward(Tensor.FromArray(prefix, [batch, p]).To(device), cache);
        }
        for (int t = p; t < length; t++)
        {
            using var scope = new TensorScope();
            var step = new long[batch];
            for (int b = 0; b < batch; b++) step[b] = ids[b * length + t];
            var logits = model.ForwardCached(Tensor.FromArray(step, [batch, 1]).To(device), cache).ToArray(); // [B, 1, V]
            for (int b = 0; b < batch; b++)
                Array.Copy(logits, b * v, result, ((long)b * (length - p) + (t - p)) * v, v);
        }
        return result;
    }
}
