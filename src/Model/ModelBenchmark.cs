// Source: the bench-tiny training-step and decode probes of perf/compare-cpu.sh.
using System.Diagnostics;
using NativeReasoner.Optim;

namespace NativeReasoner.Model;

/// <summary>
/// Throughput probes for a config (the bench-tiny numbers of the CPU-performance issue): a training step
/// (forward, cross-entropy, backward, AdamW, aux-loss-free bias update) and cached decode, in tokens/s.
/// </summary>
/// <remarks>
/// Both probes warm up for a minimum time as well as a minimum count. .NET's tiered JIT first runs a method
/// unoptimised, counts 30 calls, then compiles an instrumented and finally an optimised version on a
/// background thread; a training step calls most of its methods only a few times (once per layer), so
/// for the first 10–30 steps the step runs slower code while the JIT takes one of the two cores. A long
/// training run sees the settled state; a benchmark that stops after one warm-up step measures the JIT.
/// </remarks>
public static class ModelBenchmark
{
    /// <summary>A training-step measurement: median and best step time over the measured steps.</summary>
    public readonly record struct TrainingResult(double TokensPerSecond, double MedianMs, double BestMs, int Steps, int WarmupSteps);

    /// <summary>A decode measurement: the best of the measured runs (time per decode step, one token per sequence).</summary>
    public readonly record struct DecodeResult(double TokensPerSecond, double MsPerStep, int Steps, int Rounds, int WarmupRuns, long CacheBytesPerToken);

    /// <summary>Median tokens/s of <paramref name="steps"/> training steps on random [batch, seq] tokens.</summary>
    public static double TrainingTokensPerSecond(DeepseekV3Config c, int batch, int seq, int steps = 5, int warmup = 1) =>
        MeasureTraining(c, batch, seq, steps, warmup, warmupSeconds: 0).TokensPerSecond;

    /// <summary>
    /// Training steps on random [batch, seq] tokens: warm-up until both <paramref name="warmupSteps"/> steps
    /// and <paramref name="warmupSeconds"/> have passed, then <paramref name="steps"/> timed steps (wall clock).
    /// </summary>
    public static TrainingResult MeasureTraining(DeepseekV3Config c, int batch, int seq, int steps, int warmupSteps, double warmupSeconds)
    {
        if (batch <= 0 || seq <= 0 || steps <= 0)
            throw new ArgumentOutOfRangeException(nameof(steps), $"batch, seq and steps must be positive (got {batch}, {seq}, {steps})");
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        using var opt = new AdamW(model.Parameters(), lr: 1e-3f);
        var (input, target) = RandomNextTokenBatch(c.VocabSize, batch, seq, new Generator(2));
        void Step() => TrainingStep(model, opt, input, target, batch, seq);

        int warmed = 0;
        var warm = Stopwatch.StartNew();
        while (warmed < warmupSteps || warm.Elapsed.TotalSeconds < warmupSeconds)
        {
            Step();
            warmed++;
        }
        var times = new List<double>(steps);
        for (int s = 0; s < steps; s++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Step();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        times.Sort();
        double median = times.Count % 2 == 1 ? times[times.Count / 2] : 0.5 * (times[times.Count / 2 - 1] + times[times.Count / 2]);
        return new TrainingResult(batch * seq / median, median * 1e3, times[0] * 1e3, steps, warmed);
    }

    /// <summary>
    /// Tokens/s of greedy decode at <paramref name="batch"/> after a prompt of <paramref name="prompt"/> tokens
    /// (the best of <paramref name="rounds"/> runs after a warm-up run of the same length).
    /// </summary>
    public static (double TokensPerSecond, long CacheBytesPerToken) DecodeTokensPerSecond(DeepseekV3Config c, int batch, int prompt, int newTokens, int rounds = 1)
    {
        var r = MeasureDecode(c, batch, prompt, newTokens, rounds, warmupSeconds: 0);
        return (r.TokensPerSecond, r.CacheBytesPerToken);
    }

    /// <summary>
    /// Random token sequences of seq + 1 ids, split into next-token pairs: input[b, t] = ids[b, t] and
    /// target[b, t] = ids[b, t + 1], each [batch · seq] row-major.
    /// </summary>
    public static (long[] Input, long[] Target) RandomNextTokenBatch(int vocab, int batch, int seq, Generator rng)
    {
        var ids = new long[batch * (seq + 1)];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(vocab);
        var input = new long[batch * seq];
        var target = new long[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++)
            {
                input[b * seq + t] = ids[b * (seq + 1) + t];
                target[b * seq + t] = ids[b * (seq + 1) + t + 1];
            }
        return (input, target);
    }

    /// <summary>
    /// One CPU training step as the probes time it: forward of [batch, seq] ids, cross-entropy, backward (the
    /// activations freed with the scope), AdamW step, ZeroGrad, aux-loss-free router-bias update.
    /// </summary>
    public static void TrainingStep(DeepseekV3ForCausalLM model, AdamW opt, long[] input, long[] target, int batch, int seq)
    {
        using (var scope = new TensorScope())
        {
            var logits = model.Forward(Tensor.FromArray(input, [batch, seq]));
            var loss = Functional.CrossEntropy(logits.View(batch * seq, model.Config.VocabSize), Tensor.FromArray(target, [batch * seq]));
            loss.Backward();
        }
        opt.Step();
        opt.ZeroGrad();
        model.UpdateRouterBiases(1e-3f);
    }

    /// <summary>
    /// Greedy decode of <paramref name="newTokens"/> tokens for <paramref name="batch"/> random prompts of
    /// <paramref name="prompt"/> tokens through the compressed cache. Warm-up runs of the same length until
    /// <paramref name="warmupSeconds"/> have passed (at least one), then the best of <paramref name="rounds"/>
    /// runs; the prefill is not timed (decode steps only).
    /// </summary>
    public static DecodeResult MeasureDecode(DeepseekV3Config c, int batch, int prompt, int newTokens, int rounds, double warmupSeconds)
    {
        if (batch <= 0 || prompt <= 0 || newTokens <= 1 || rounds <= 0)
            throw new ArgumentOutOfRangeException(nameof(newTokens), $"batch, prompt and rounds must be positive and new tokens > 1 (got {batch}, {prompt}, {newTokens}, {rounds})");
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        return MeasureDecode(model, batch, prompt, newTokens, rounds, warmupSeconds, MlaCache.BytesPerTokenFor(c));
    }

    /// <summary>
    /// <see cref="MeasureDecode(DeepseekV3Config, int, int, int, int, double)"/> on a loaded model of any family (a
    /// model directory: packed, bf16 or float32 weights as loaded); <paramref name="cacheBytesPerToken"/> is reported
    /// as given.
    /// </summary>
    public static DecodeResult MeasureDecode(ICausalLM model, int batch, int prompt, int newTokens, int rounds,
        double warmupSeconds, long cacheBytesPerToken)
    {
        if (batch <= 0 || prompt <= 0 || newTokens <= 1 || rounds <= 0)
            throw new ArgumentOutOfRangeException(nameof(newTokens), $"batch, prompt and rounds must be positive and new tokens > 1 (got {batch}, {prompt}, {newTokens}, {rounds})");
        int vocab = model.Config.VocabSize;
        var rng = new Generator(3);
        var prompts = Enumerable.Range(0, batch).Select(_ => Enumerable.Range(0, prompt).Select(_ => (long)rng.NextInt(vocab)).ToArray()).ToList();
        var opts = new GenerationOptions { MaxNewTokens = newTokens, Temperature = 0, EosTokenIds = [] };
        int warmRuns = 0;
        var warm = Stopwatch.StartNew();
        do
        {
            TextGeneration.Generate(model, prompts, opts, rng);
            warmRuns++;
        } while (warm.Elapsed.TotalSeconds < warmupSeconds);
        // The best of `rounds` runs: on a shared machine the slowest runs measure the other load, not the model.
        double best = 0, bestMsPerStep = double.NaN;
        int steps = 0;
        for (int round = 0; round < rounds; round++)
        {
            var r = TextGeneration.Generate(model, prompts, opts, rng);
            double rate = batch * (double)r.DecodeSteps / r.DecodeTime.TotalSeconds;
            if (rate > best)
            {
                best = rate;
                steps = r.DecodeSteps;
                bestMsPerStep = r.DecodeTime.TotalMilliseconds / r.DecodeSteps;
            }
        }
        return new DecodeResult(best, bestMsPerStep, steps, rounds, warmRuns, cacheBytesPerToken);
    }
}
