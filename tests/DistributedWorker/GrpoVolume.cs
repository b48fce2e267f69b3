using NativeReasoner.Distributed;
using NativeReasoner.Model;
using NativeReasoner.RL;

namespace NativeReasoner.DistributedWorker;

/// <summary>
/// The bytes one distributed GRPO step hands to the collectives (<see cref="GrpoTrainer.LastStepTraffic"/>) on the
/// bench-tiny model (MLA + 256-expert MoE, as <c>nr train</c> trains it): 6 prompts × G = 8, completions up to 32
/// tokens, μ = 1, one step; printed per rank, for docs/scaling.md. Always passes unless the step fails.
/// </summary>
internal static class GrpoVolume
{
    public static List<string> Run(IProcessGroup g)
    {
        var tokenizer = new CharTokenizer();
        using var model = DeepseekV3Config.Preset("bench-tiny").ForTokenizer(tokenizer.VocabSize, tokenizer.EosId,
            tokenizer.BosId, tokenizer.PadId).Build(new Generator(3));
        var task = new ArithmeticTask();
        var config = new GrpoConfig
        {
            NumGenerations = 8, PromptsPerStep = 6, MaxCompletionLength = 32, LearningRate = 1e-4f, Seed = 5,
        };
        using var trainer = new GrpoTrainer(new CausalLMPolicy(model), null, tokenizer, task,
            new RewardSet().Add(new AccuracyReward(task)), PromptTemplate.Default, config, group: g);
        model.Train();
        var m = trainer.Step();
        var t = trainer.LastStepTraffic;
        long tokens = trainer.LastRollouts.Sum(r => (long)r.Tokens.Length);
        Console.WriteLine($"grpo volume, rank {g.Rank} of {g.Size}: gradients {t.GradientBytes:N0} B, rollouts " +
                          $"{t.RolloutBytes:N0} B, control {t.ControlBytes:N0} B, total {t.TotalBytes:N0} B; " +
                          $"{tokens} completion tokens in the batch; " +
                          $"step {m.First(kv => kv.Key == "step_time").Value:F1} s");
        return [];
    }
}
