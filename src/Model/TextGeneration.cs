// Source: HF transformers' generate() sampling (temperature, top-k, top-p) with a KV cache.
namespace NativeReasoner.Model;

/// <summary>How to pick and when to stop.</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate at most per sequence.</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>0 = greedy (argmax); otherwise logits are divided by it before sampling.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the k most likely tokens (0 = off).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p (1 = off).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Ids that end a sequence (included in its output); null = the config's eos_token_id(s).</summary>
    public IReadOnlyList<long>? EosTokenIds { get; init; }

    /// <summary>Texts that end a sequence once the decoded completion contains one (needs <see cref="Detokenize"/>).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Turns a sequence's generated ids into text, for the stop strings.</summary>
    public Func<IReadOnlyList<long>, string>? Detokenize { get; init; }

    /// <summary>Budget forcing of the thinking phase (s1); null = generation as sampled.</summary>
    public ThinkingBudget? ThinkingBudget { get; init; }

    /// <summary>Called with (sequence index, token id) as each generated token is appended: streamed output.</summary>
    public Action<int, long>? OnToken { get; init; }

    /// <summary>
    /// Stops generation between steps (Ctrl-C in <c>nr chat</c>); unfinished sequences end as Cancelled.
    /// </summary>
    public CancellationToken Cancellation { get; init; }
}

/// <summary>Why a sequence ended.</summary>
public enum FinishReason { Length, Eos, StopString, Cancelled }

/// <summary>The generated ids of each sequence (prompt excluded) and what the run cost.</summary>
public sealed record GenerationResult(
    IReadOnlyList<long[]> Tokens,
    IReadOnlyList<FinishReason> FinishReasons,
    long CacheBytesPerToken,
    long CacheBytesAllocated,
    int DecodeSteps,
    TimeSpan PrefillTime,
    TimeSpan DecodeTime);

/// <summary>
/// Batched generation: one prefill of all prompts (right-padded to the longest; causal attention keeps
/// the padding invisible to the real tokens, and each sequence's cache length is set to its own prompt
/// length), then one-token decode steps for the whole batch through the model's cache (DeepSeek's compressed
/// MLA cache, the dense families' GQA K/V cache), each sequence at its own position. Prompt + max_new_tokens must
/// fit max_position_embeddings. Sampling: greedy, temperature, top-k, top-p, from a seeded generator;
/// an optional <see cref="ThinkingBudget"/> may replace each row's pick before it is appended.
/// </summary>
public static class TextGeneration
{
    public static GenerationResult Generate(ICausalLM model, IReadOnlyList<long[]> prompts, GenerationOptions options, Generator rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        return Generate(model, prompts, options, _ => rng);
    }

    /// <summary>
    /// As <see cref="Generate(ICausalLM, IReadOnlyList{long[]}, GenerationOptions, Generator)"/>, but row i draws its
    /// tokens from <paramref name="rowGenerators"/>[i] alone, so what a row samples does not depend on which other
    /// rows share the batch (distributed GRPO hands each rank a different set of prompts).
    /// </summary>
    public static GenerationResult Generate(ICausalLM model, IReadOnlyList<long[]> prompts, GenerationOptions options,
        IReadOnlyList<Generator> rowGenerators)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(rowGenerators);
        if (rowGenerators.Count != prompts.Count)
            throw new ArgumentException(
                $"{rowGenerators.Count} row generators for {prompts.Count} prompts (one per row)");
        return Generate(model, prompts, options, i => rowGenerators[i]);
    }

    private static GenerationResult Generate(ICausalLM model, IReadOnlyList<long[]> prompts, GenerationOptions options,
        Func<int, Generator> rngOf)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0) throw new ArgumentException("no prompts");
        if (options.MaxNewTokens < 0) throw new ArgumentException($"max new tokens must be ≥ 0, got {options.MaxNewTokens}");
        if (options.Temperature < 0) throw new ArgumentException($"temperature must be ≥ 0, got {options.Temperature}");
        if (options.TopP <= 0 || options.TopP > 1) throw new ArgumentException($"top-p must be in (0, 1], got {options.TopP}");
        if (options.StopStrings.Count > 0 && options.Detokenize == null) throw new ArgumentException("stop strings need a detokenizer");
        int b = prompts.Count, v = model.Config.VocabSize;
        foreach (var p in prompts)
            if (p.Length == 0) throw new ArgumentException("every prompt needs at least one token");
        int maxPrompt = prompts.Max(p => p.Length);
        int maxPositions = model.Config.MaxPositionEmbeddings;
        if (maxPrompt + options.MaxNewTokens > maxPositions)
            throw new ArgumentException(
                $"prompt ({maxPrompt} tokens) + max_new_tokens ({options.MaxNewTokens}) = " +
                $"{maxPrompt + options.MaxNewTokens} positions, beyond the model's max_position_embeddings " +
                $"{maxPositions}: shorten the prompt or lower max_new_tokens");
        var eos = new HashSet<long>(options.EosTokenIds ?? model.Config.EosTokenIds);
        var device = model.Device;
        bool wasTraining = model.IsTraining;
        model.Eval();

        var outputs = Enumerable.Range(0, b).Select(_ => new List<long>()).ToArray();
        var reasons = Enumerable.Repeat(FinishReason.Length, b).ToArray();
        var done = new bool[b];
        var budget = options.ThinkingBudget?.Start(b);
        using var cache = model.CreateCache(b, maxPrompt + Math.Max(options.MaxNewTokens, 1));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var next = new long[b];
        using (Tensor.NoGrad())
        using (var scope = new TensorScope())
        {
            var ids = new long[b * maxPrompt];
            for (int i = 0; i < b; i++) Array.Copy(prompts[i], 0, ids, i * maxPrompt, prompts[i].Length);
            var last = new int[b];
            for (int i = 0; i < b; i++) last[i] = prompts[i].Length - 1;
            // Only each prompt's last position goes through the vocabulary head.
            var logits = model.ForwardLast(Tensor.FromArray(ids, [b, maxPrompt]).To(device), cache, last)
                .ToArray();                                                                     // [B, 1, V]
            for (int i = 0; i < b; i++)
            {
                cache.Lengths[i] = prompts[i].Length;
                int row = checked(i * v);
                next[i] = Sample(logits.AsSpan(row, v), options, rngOf(i));
                if (budget != null && options.MaxNewTokens > 0) next[i] = budget.Choose(i, next[i]);
            }
        }
        var prefill = clock.Elapsed;
        clock.Restart();
        int steps = 0;
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            if (options.Cancellation.IsCancellationRequested)
            {
                for (int i = 0; i < b; i++) if (!done[i]) reasons[i] = FinishReason.Cancelled;
                break;
            }
            for (int i = 0; i < b; i++)
            {
                if (done[i]) continue;
                outputs[i].Add(next[i]);
                options.OnToken?.Invoke(i, next[i]);
                if (eos.Contains(next[i])) { done[i] = true; reasons[i] = FinishReason.Eos; }
                else if (options.StopStrings.Count > 0)
                {
                    var text = options.Detokenize!(outputs[i]);
                    if (options.StopStrings.Any(s => text.Contains(s, StringComparison.Ordinal))) { done[i] = true; reasons[i] = FinishReason.StopString; }
                }
                if (!done[i] && outputs[i].Count >= options.MaxNewTokens) done[i] = true;
            }
            if (done.All(d => d)) break;
            using var scope = new TensorScope();
            // Finished sequences still take a step (batch shapes stay fixed); their output is ignored.
            var logits = model.ForwardCached(Tensor.FromArray(next, [b, 1]).To(device), cache).ToArray();
            steps++;
            for (int i = 0; i < b; i++)
            {
                if (done[i]) continue;
                next[i] = Sample(logits.AsSpan(i * v, v), options, rngOf(i));
                // The budget may replace the pick; the replacement is what the next step feeds back.
                if (budget != null && outputs[i].Count < options.MaxNewTokens) next[i] = budget.Choose(i, next[i]);
            }
        }
        var decode = clock.Elapsed;
        model.Train(wasTraining);
        return new GenerationResult(outputs.Select(o => o.ToArray()).ToArray(), reasons, cache.BytesPerToken, cache.BytesAllocated, steps, prefill, decode);
    }

    /// <summary>Picks one token id from a row of logits.</summary>
    public static long Sample(ReadOnlySpan<float> logits, GenerationOptions o, Generator rng)
    {
        int v = logits.Length;
        if (o.Temperature == 0 || o.TopK == 1)
        {
            int best = 0;
            for (int i = 1; i < v; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        // Candidates sorted by logit (descending; ties by id), cut by top-k, softmax at the temperature,
        // then cut by top-p (the smallest prefix reaching p), renormalised and sampled.
        var order = new int[v];
        for (int i = 0; i < v; i++) order[i] = i;
        var keys = logits.ToArray();
        Array.Sort(order, (x, y) => keys[y] != keys[x] ? keys[y].CompareTo(keys[x]) : x.CompareTo(y));
        int n = o.TopK > 0 ? Math.Min(o.TopK, v) : v;
        var prob = new double[n];
        double max = keys[order[0]], sum = 0;
        for (int i = 0; i < n; i++) sum += prob[i] = Math.Exp((keys[order[i]] - max) / o.Temperature);
        if (o.TopP < 1)
        {
            double acc = 0;
            int keep = n;
            for (int i = 0; i < n; i++)
            {
                acc += prob[i] / sum;
                if (acc >= o.TopP) { keep = i + 1; break; }
            }
            n = keep;
            sum = 0;
            for (int i = 0; i < n; i++) sum += prob[i];
        }
        double u = rng.NextDouble() * sum;
        for (int i = 0; i < n; i++)
        {
            u -= prob[i];
            if (u < 0) return order[i];
        }
        return order[n - 1];
    }
}
