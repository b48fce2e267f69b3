// Source: TRL GRPOTrainer's policy (logits, parameters, generation).
using NativeReasoner.Model;
using NativeReasoner.Nn;

namespace NativeReasoner.RL;

/// <summary>One generated sequence: its tokens (prompt excluded; the EOS included when sampled) and why it ended.</summary>
public sealed record SampledSequence(long[] Tokens, FinishReason FinishReason)
{
    /// <summary>Hit the token limit before EOS (a "truncated" completion for mask_truncated_completions).</summary>
    public bool Truncated => FinishReason == FinishReason.Length;
}

/// <summary>
/// What the RL layer needs from a language model: causal logits with autograd, its trainable parameters,
/// and sampling. Every model family plugs in through <see cref="CausalLMPolicy"/>; tests use small
/// stand-ins. Callers run forwards inside a <see cref="TensorScope"/>.
/// </summary>
public interface IPolicy
{
    int VocabSize { get; }

    /// <summary>Causal forward of every position: int64 ids [B, T] → logits [B, T, V], recorded for backward.</summary>
    Tensor Logits(Tensor inputIds);

    IEnumerable<Parameter> Parameters();

    /// <summary>
    /// Samples a completion for each prompt (token ids), stopping at an EOS id or after
    /// <see cref="GenerationOptions.MaxNewTokens"/>. Deterministic in <paramref name="rng"/>.
    /// </summary>
    IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng);

    /// <summary>
    /// Samples as <see cref="Generate(IReadOnlyList{long[]}, GenerationOptions, Generator)"/>, but row i draws from
    /// <paramref name="rowGenerators"/>[i] alone: a row's completion does not depend on the rest of the batch (a
    /// distributed GRPO step samples each rank's prompts apart). By default one row at a time.
    /// </summary>
    IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options,
        IReadOnlyList<Generator> rowGenerators)
    {
        if (rowGenerators.Count != prompts.Count)
            throw new ArgumentException(
                $"{rowGenerators.Count} row generators for {prompts.Count} prompts (one per row)");
        return prompts.Select((p, i) => Generate([p], options, rowGenerators[i])[0]).ToArray();
    }
}

/// <summary>Sampling for policies without a KV cache.</summary>
public static class Sampling
{
    /// <summary>
    /// The reference sampler: each new token re-runs the full causal forward of each sequence (O(T²), no
    /// cache), so it works for any <see cref="IPolicy.Logits"/>. Token choice is the model's
    /// <see cref="TextGeneration.Sample"/> (greedy / temperature / top-k / top-p), so both samplers agree.
    /// Prompts of equal length are run as one batch (GRPO's G copies of a prompt are).
    /// </summary>
    public static IReadOnlyList<SampledSequence> GenerateByRecompute(IPolicy policy, IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng)
    {
        if (prompts.Count == 0) throw new ArgumentException("no prompts");
        var eos = new HashSet<long>(options.EosTokenIds ?? throw new ArgumentException("sampling needs EosTokenIds"));
        var result = new SampledSequence[prompts.Count];
        using var noGrad = Tensor.NoGrad();
        // Batches of equal prompt length, in first-appearance order so the random stream is deterministic.
        foreach (var group in Enumerable.Range(0, prompts.Count).GroupBy(i => prompts[i].Length))
        {
            var rows = group.ToArray();
            int b = rows.Length, p = group.Key;
            if (p == 0) throw new ArgumentException("every prompt needs at least one token");
            var seqs = rows.Select(i => new List<long>(prompts[i])).ToArray();
            var done = new bool[b];
            var reasons = Enumerable.Repeat(FinishReason.Length, b).ToArray();
            var budget = options.ThinkingBudget?.Start(b);
            for (int step = 0; step < options.MaxNewTokens && !done.All(d => d); step++)
            {
                int len = p + step;
                using var scope = new TensorScope();
                var ids = new long[b * len];
                for (int r = 0; r < b; r++)
                    for (int t = 0; t < len; t++) ids[r * len + t] = t < seqs[r].Count ? seqs[r][t] : 0;
                var logits = policy.Logits(Tensor.FromArray(ids, b, len));   // [b, len, V]
                int v = logits.Shape[2];
                using var last = logits.Narrow(1, len - 1, 1);
                var rowsLogits = last.ToArray();                                // [b, V]
                for (int r = 0; r < b; r++)
                {
                    if (done[r]) continue;
                    long tok = TextGeneration.Sample(rowsLogits.AsSpan(r * v, v), options, rng);
                    if (budget != null) tok = budget.Choose(r, tok);
                    seqs[r].Add(tok);
                    if (eos.Contains(tok)) { done[r] = true; reasons[r] = FinishReason.Eos; }
                }
            }
            for (int r = 0; r < b; r++) result[rows[r]] = new SampledSequence(seqs[r].Skip(p).ToArray(), reasons[r]);
        }
        return result;
    }
}

/// <summary>
/// Any causal LM (DeepSeek-V3, Qwen2, Llama, Qwen3) as a policy: full forward for training, its cached generator
/// (MLA or GQA K/V cache) for sampling.
/// </summary>
public sealed class CausalLMPolicy(ICausalLM model) : IPolicy
{
    public ICausalLM Model { get; } = model;

    public int VocabSize => Model.Config.VocabSize;

    public Tensor Logits(Tensor inputIds) => Model.Forward(inputIds);

    public IEnumerable<Parameter> Parameters() => Model.Parameters();

    public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng)
    {
        var r = TextGeneration.Generate(Model, prompts, options, rng);
        return r.Tokens.Select((t, i) => new SampledSequence(t, r.FinishReasons[i])).ToArray();
    }

    public IReadOnlyList<SampledSequence> Generate(IReadOnlyList<long[]> prompts, GenerationOptions options,
        IReadOnlyList<Generator> rowGenerators)
    {
        var r = TextGeneration.Generate(Model, prompts, options, rowGenerators);
        return r.Tokens.Select((t, i) => new SampledSequence(t, r.FinishReasons[i])).ToArray();
    }
}
