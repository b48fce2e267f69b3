using System.Diagnostics;
using NativeReasoner.Optim;

namespace NativeReasoner.Model;

/// <summary>
/// Throughput probes for a config (the bench-tiny numbers of the CPU-performance issue): a training step
/// (forward, cross-entropy, backward, AdamW, aux-loss-free bias update) and cached decode, in tokens/s.
/// </summary>
public static class ModelBenchmark
{
    /// <summary>Median tokens/s of <paramref name="steps"/> training steps on random [batch, seq] tokens.</summary>
    public static double TrainingTokensPerSecond(DeepseekV3Config c, int batch, int seq, int steps = 5, int warmup = 1)
    {
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        using var opt = new AdamW(model.Parameters(), lr: 1e-3f);
        var rng = new Generator(2);
        var ids = new long[batch * (seq + 1)];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(c.VocabSize);
        var input = new long[batch * seq];
        var target = new long[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++)
            {
                input[b * seq + t] = ids[b * (seq + 1) + t];
                target[b * seq + t] = ids[b * (seq + 1) + t + 1];
            }
        var times = new List<double>();
        for (int s = 0; s < warmup + steps; s++)
        {
            var sw = Stopwatch.StartNew();
            using (var scope = new TensorScope())
            {
                var logits = model.Forward(Tensor.FromArray(input, [batch, seq]));
                var loss = Functional.CrossEntropy(logits.View(batch * seq, c.VocabSize), Tensor.FromArray(target, [batch * seq]));
                loss.Backward();
            }
            opt.Step();
            opt.ZeroGrad();
            model.UpdateRouterBiases(1e-3f);
            if (s >= warmup) times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return batch * seq / times[times.Count / 2];
    }

    /// <summary>
    /// Tokens/s of greedy decode at <paramref name="batch"/> after a prompt of <paramref name="prompt"/> tokens
    /// (the best of <paramref name="rounds"/> runs after a warm-up run of the same length).
    /// </summary>
    public static (double TokensPerSecond, long CacheBytesPerToken) DecodeTokensPerSecond(DeepseekV3Config c, int batch, int prompt, int newTokens, int rounds = 1)
    {
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        var rng = new Generator(3);
        var prompts = Enumerable.Range(0, batch).Select(_ => Enumerable.Range(0, prompt).Select(_ => (long)rng.NextInt(c.VocabSize)).ToArray()).ToList();
        var opts = new GenerationOptions { MaxNewTokens = newTokens, Temperature = 0, EosTokenIds = [] };
        // Warm-up as long as the measured run: the JIT's tiers settle (the first calls of a method run
        // unoptimised code while the optimised version compiles in the background) and the pools fill.
        TextGeneration.Generate(model, prompts, opts, rng);
        // The best of `rounds` runs: on a shared machine the slowest runs measure the other load, not the model.
        double best = 0;
        for (int round = 0; round < rounds; round++)
        {
            var r = TextGeneration.Generate(model, prompts, opts, rng);
            best = Math.Max(best, batch * (double)r.DecodeSteps / r.DecodeTime.TotalSeconds);
        }
        return (best, MlaCache.BytesPerTokenFor(c));
    }
}
