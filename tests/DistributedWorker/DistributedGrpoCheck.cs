using NativeReasoner.Distributed;
using NativeReasoner.Model;
using NativeReasoner.RL;

namespace NativeReasoner.DistributedWorker;

/// <summary>
/// Distributed GRPO equals one process: N ranks (each sampling and scoring its share of the prompts, the loss of its
/// share of the kept groups under the whole batch's normaliser, gradients summed) take <see cref="Steps"/> GRPO steps
/// on the tiny DeepSeek-V3 (MoE) and must give, against one process with the same seed: the same rollouts (token
/// ids, every step), the same metrics (1e-5 relative, 1e-6 absolute: the ranks' parts are summed in float32), and
/// parameters within 1e-5 relative to each tensor's largest magnitude (the sums over ranks round differently from
/// one sum, and AdamW's m / √v divides such differences by small second moments). All ranks end bit-identical.
/// Two settings: dapo with μ = 1; and the grpo loss with μ = 2, β ≠ 0 (a reference model), routing replay and
/// dynamic sampling on a reward that leaves many groups without variance (several rounds, top-ups).
/// </summary>
internal static class DistributedGrpoCheck
{
    private const int Steps = 3;

    private static readonly CharTokenizer Tokenizer = new();

    /// <summary>The share of digits in the completion: a reward that differs within almost every group.</summary>
    private sealed class DigitShareReward : IRewardFunction
    {
        public string Name => "digits";

        public float? Score(RewardInput input) =>
            input.Completion.Length == 0 ? 0f
                : input.Completion.Count(char.IsAsciiDigit) / (float)input.Completion.Length;
    }

    /// <summary>1 when the completion holds a 7: mostly 0 for a random model (many groups without variance).</summary>
    private sealed class SevenReward : IRewardFunction
    {
        public string Name => "seven";

        public float? Score(RewardInput input) => input.Completion.Contains('7') ? 1f : 0f;
    }

    private static IEnumerable<(string Name, GrpoConfig Config, Func<VerifiableTask, RewardSet> Rewards)> Cases()
    {
        var common = new GrpoConfig
        {
            NumGenerations = 4, PromptsPerStep = 6, MaxCompletionLength = 8, LearningRate = 1e-3f, Seed = 11,
            TotalSteps = Steps, FusedLoss = false,
        };
        yield return ("dapo", common with { LossType = LossType.Dapo, EpsilonHigh = 0.28f },
            t => new RewardSet().Add(new DigitShareReward()).Add(new AccuracyReward(t), 0.5f));
        yield return ("grpo-mu2-kl-replay-dynamic", common with
        {
            LossType = LossType.Grpo,
            NumIterations = 2,
            Beta = 0.04f,
            RoutingReplay = true,
            DynamicSampling = true,
            DynamicSamplingMaxRounds = 3,
        }, _ => new RewardSet().Add(new SevenReward()));
    }

    public static List<string> Run(IProcessGroup g)
    {
        var failures = new List<string>();
        foreach (var (name, config, rewards) in Cases())
        {
            var parallel = Train(g, config, rewards);
            using (var root = Tensor.FromArray(parallel.Parameters, parallel.Parameters.Length))
            {
                g.Broadcast(root, 0);
                var r = root.ToArray();
                int differing = Enumerable.Range(0, r.Length).Count(i
                    => BitConverter.SingleToInt32Bits(r[i]) != BitConverter.SingleToInt32Bits(parallel.Parameters[i]));
                if (differing > 0) failures.Add($"{name}: {differing} parameters differ from rank 0's");
            }
            if (g.Rank != 0) continue;
            var single = Train(new LocalProcessGroup(), config, rewards);
            for (int s = 0; s < Steps; s++)
            {
                var a = single.Rollouts[s];
                var b = parallel.Rollouts[s];
                if (a.Count != b.Count || a.Where((x, i) => !x.SequenceEqual(b[i])).Any())
                    failures.Add($"{name} step {s + 1}: the rollouts over {g.Size} ranks differ from one process's");
                var keys = single.Metrics[s].Keys.Where(k => k is not ("step_time" or "tokens_per_second")).ToArray();
                foreach (var k in keys)
                {
                    if (!parallel.Metrics[s].TryGetValue(k, out var got))
                    {
                        failures.Add($"{name} step {s + 1}: metric {k} missing over {g.Size} ranks");
                        continue;
                    }
                    double want = single.Metrics[s][k];
                    if (!(Math.Abs(got - want) <= 1e-6 + 1e-5 * Math.Abs(want)))
                        failures.Add($"{name} step {s + 1}: {k} = {got} over {g.Size} ranks, {want} in one process");
                }
                foreach (var k in parallel.Metrics[s].Keys.Except(single.Metrics[s].Keys))
                    failures.Add($"{name} step {s + 1}: metric {k} only over {g.Size} ranks");
            }
            var (worst, worstName) = LargestDifference(single.Parameters, parallel.Parameters);
            int rounds = single.Metrics.Sum(m => (int)m.GetValueOrDefault("dynamic_sampling/rounds", 1));
            Console.WriteLine($"distributed GRPO ({name}) over {g.Size} ranks vs one process after {Steps} steps: " +
                              $"same rollouts and metrics; largest relative parameter difference {worst:E2} " +
                              $"({worstName}); sampling rounds {rounds}; gradient bytes per optimizer step " +
                              $"{parallel.GradientBytes:N0}");
            if (!(worst <= 1e-5)) failures.Add($"{name}: parameter {worstName} differs by {worst:E2} (relative)");
            if (single.Metrics.All(m => m["loss"] == 0))
                failures.Add($"{name}: every loss is 0 — the check would not see a wrong gradient");
        }
        return failures;
    }

    private sealed record Outcome(float[] Parameters, List<List<long[]>> Rollouts,
        List<Dictionary<string, double>> Metrics,
        long GradientBytes);

    private static ICausalLM Build() =>
        DeepseekV3Config.Preset("tiny").ForTokenizer(Tokenizer.VocabSize, Tokenizer.EosId, Tokenizer.BosId,
            Tokenizer.PadId).Build(new Generator(7));

    private static Outcome Train(IProcessGroup g, GrpoConfig config, Func<VerifiableTask, RewardSet> rewards)
    {
        var task = new ArithmeticTask();
        using var model = Build();
        using var reference = config.Beta != 0 ? Build() : null;
        using var trainer = new GrpoTrainer(new CausalLMPolicy(model),
            reference == null ? null : new CausalLMPolicy(reference), Tokenizer, task, rewards(task),
            PromptTemplate.Default, config, group: g);
        model.Train();
        var rollouts = new List<List<long[]>>();
        var metrics = new List<Dictionary<string, double>>();
        for (int s = 0; s < Steps; s++)
        {
            metrics.Add(trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value));
            rollouts.Add(trainer.LastRollouts.Select(r => r.Tokens).ToList());
        }
        return new Outcome(model.NamedParameters().SelectMany(p => p.Param.ToArray()).ToArray(), rollouts, metrics,
            trainer.GradientBytesPerStep);
    }

    private static (double Worst, string Name) LargestDifference(float[] single, float[] parallel)
    {
        using var model = Build();
        double worst = 0;
        string worstName = "";
        int offset = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            double scale = 0, diff = 0;
            for (int i = offset; i < offset + p.Numel; i++)
            {
                scale = Math.Max(scale, Math.Abs(single[i]));
                diff = Math.Max(diff, Math.Abs(single[i] - parallel[i]));
            }
            offset += (int)p.Numel;
            double relative = diff / Math.Max(scale, 1e-12);
            if (!(relative <= worst)) (worst, worstName) = (relative, name);
        }
        return (worst, worstName);
    }
}
