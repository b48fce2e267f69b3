using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// DAPO dynamic sampling: zero-variance groups never reach the update while the cap allows; the cap holds.
/// </summary>
public class DynamicSamplingTests
{
    // Groups are their reward vectors here: the sampler only looks at rewards.
    private static DynamicSamplingResult<float[]> Run(IReadOnlyList<float[][]> rounds, int wanted, int cap, bool filter,
        out int calls)
    {
        int n = 0;
        var result = DynamicSampling.Fill(wanted, cap, filter, r => { n++; return rounds[r]; }, g => g);
        calls = n;
        return result;
    }

    [Fact]
    public void Fill_DropsZeroVarianceGroups_UntilTheBatchIsFull()
    {
        float[][][] rounds =
        [
            [[1, 1], [0, 1], [0, 0]],
            [[2, 2], [1, 0]],
            [[0.5f, 0.5f], [0, 1], [1, 0]],
            [[0, 1]],
        ];
        var r = Run(rounds, wanted: 3, cap: 4, filter: true, out int calls);
        Assert.Equal(3, calls);
        Assert.Equal(3, r.Rounds);
        Assert.Equal(3, r.Groups.Count);
        Assert.All(r.Groups, g => Assert.False(DynamicSampling.HasZeroStd(g)));
        Assert.Equal(0, r.ZeroStdKept);
        Assert.Equal(8, r.SampledGroups);
        Assert.Equal(4, r.ZeroStdGroups);
        Assert.Equal(0.5f, r.FracRewardZeroStd);
    }

    [Fact]
    public void Fill_RespectsTheCap_AndTopsUpWithDroppedGroups()
    {
        float[][][] rounds = [[[1, 1], [0, 0]], [[3, 3], [1, 0]], [[0, 1], [1, 0]]];
        var r = Run(rounds, wanted: 2, cap: 2, filter: true, out int calls);
        Assert.Equal(2, calls);
        Assert.Equal(2, r.Rounds);
        Assert.Equal(2, r.Groups.Count);
        // The one group with variance first, then the oldest dropped one.
        Assert.Equal(new float[] { 1, 0 }, r.Groups[0]);
        Assert.Equal(new float[] { 1, 1 }, r.Groups[1]);
        Assert.Equal(1, r.ZeroStdKept);
    }

    [Fact]
    public void Fill_WithoutFilter_IsOneRoundAsDrawn()
    {
        float[][][] rounds = [[[1, 1], [0, 1]], [[0, 1], [1, 0]]];
        var r = Run(rounds, wanted: 2, cap: 5, filter: false, out int calls);
        Assert.Equal(1, calls);
        Assert.Same(rounds[0][0], r.Groups[0]);
        Assert.Equal(1, r.ZeroStdKept);
        Assert.Equal(0.5f, r.FracRewardZeroStd);
        // NaN rewards are skipped: [NaN, 2, 2] has zero std, [NaN, 1] has none and is kept.
        Assert.True(DynamicSampling.HasZeroStd([float.NaN, 2f, 2f]));
        Assert.False(DynamicSampling.HasZeroStd([float.NaN, 1f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => DynamicSampling.Fill(2, 0, true, _ => rounds[0], g => g));
    }

    [Fact]
    public void Fill_RandomDraws_NoZeroVarianceGroupWhileTheCapAllows()
    {
        var rng = new Random(11);
        for (int trial = 0; trial < 500; trial++)
        {
            int wanted = rng.Next(1, 6), cap = rng.Next(1, 5), perRound = rng.Next(1, 6);
            double pFlat = rng.NextDouble();
            var rounds = Enumerable.Range(0, cap + 1).Select(_ => Enumerable.Range(0, perRound)
                    .Select(_ => rng.NextDouble() < pFlat ? new float[] { 1, 1, 1 } : [0, 1, 1]).ToArray())
                .ToArray();
            var r = Run(rounds, wanted, cap, filter: true, out int calls);
            Assert.True(calls <= cap, $"trial {trial}: {calls} rounds drawn, cap {cap}");
            Assert.Equal(Math.Min(wanted, calls * perRound), r.Groups.Count);
            int flatKept = r.Groups.Count(g => DynamicSampling.HasZeroStd(g));
            Assert.Equal(flatKept, r.ZeroStdKept);
            // A zero-variance group is only let through once the cap has run out.
            if (flatKept > 0) Assert.Equal(cap, calls);
            if (calls < cap) Assert.Equal(0, flatKept);
        }
    }

    private sealed class ParityReward : IRewardFunction
    {
        public string Name => "parity";

        public float? Score(RewardInput input) => input.Completion.Length > 0 && input.Completion[0] % 2 == 0 ? 1f : 0f;
    }

    private sealed class ConstantReward : IRewardFunction
    {
        public string Name => "constant";

        public float? Score(RewardInput input) => 1f;
    }

    [Fact]
    public void Trainer_DynamicSampling_KeepsOnlyGroupsWithSignal_AndStopsAtTheCap()
    {
        var tok = new CharTokenizer();
        using var policy = new UnigramPolicy(tok.VocabSize);
        var task = new ArithmeticTask();
        // G = 2 with a coin-flip reward: about half the groups agree, so plain sampling would keep some.
        var config = new GrpoConfig
        {
            NumGenerations = 2, PromptsPerStep = 3, MaxCompletionLength = 4, LossType = LossType.Grpo,
            LearningRate = 0.01f, Seed = 5,
            DynamicSampling = true, DynamicSamplingMaxRounds = 12,
        };
        var parity = new RewardSet().Add(new ParityReward());
        using (var trainer = new GrpoTrainer(policy, null, tok, task, parity, PromptTemplate.Default, config))
        {
            bool sawZeroStd = false;
            for (int i = 0; i < 6; i++)
            {
                var m = trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value);
                double rounds = m["dynamic_sampling/rounds"];
                Assert.InRange(rounds, 1, 12);
                Assert.True(rounds < 12, "a coin-flip reward should fill 3 groups well within 12 rounds");
                Assert.Equal(0.0, m["dynamic_sampling/zero_std_kept"]);
                // Every group that reached the update disagrees: rewards 0 and 1 within each pair, mean exactly 0.5.
                Assert.Equal(0.5, m["reward"], 6);
                sawZeroStd |= m["frac_reward_zero_std"] > 0;
            }
            Assert.True(sawZeroStd, "the coin-flip reward never produced an agreeing group: the test checks nothing");
        }

        // A reward that never varies: every step draws exactly the cap, then trains on a full batch of flat groups.
        var constant = new RewardSet().Add(new ConstantReward());
        using var trainer2 = new GrpoTrainer(policy, null, tok, task, constant, PromptTemplate.Default,
            config with { DynamicSamplingMaxRounds = 3 });
        var last = trainer2.Step().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(3.0, last["dynamic_sampling/rounds"]);
        Assert.Equal(3.0, last["dynamic_sampling/zero_std_kept"]);
        Assert.Equal(1.0, last["frac_reward_zero_std"]);
        Assert.Throws<ArgumentException>(() => (config with { DynamicSamplingMaxRounds = 0 }).Validate());
    }

    [Fact]
    public void Trainer_GspoWithRloo_TrainsAndClipsPerSequence()
    {
        var tok = new CharTokenizer();
        using var policy = new UnigramPolicy(tok.VocabSize);
        var config = new GrpoConfig
        {
            NumGenerations = 4, PromptsPerStep = 2, NumIterations = 2, MaxCompletionLength = 6,
            LossType = LossType.Grpo, LearningRate = 0.5f, Seed = 9, EpsilonLow = 1e-3f,
            ImportanceSamplingLevel = ImportanceSamplingLevel.Sequence,
            AdvantageEstimator = AdvantageEstimator.Rloo,
        };
        var sevens = new RewardSet().Add(new SevensReward());
        using var trainer = new GrpoTrainer(policy, null, tok, new ArithmeticTask(), sevens, PromptTemplate.Default,
            config);
        var history = Enumerable.Range(0, 4).Select(_ => trainer.Step().ToDictionary(kv => kv.Key, kv => kv.Value))
            .ToArray();
        Assert.All(history, m => Assert.True(double.IsFinite(m["loss"]) && double.IsFinite(m["grad_norm"])));
        // μ = 2 with a large step and a tiny clip range: whole completions leave the trust region on the second pass.
        Assert.Contains(history, m => m["clip_ratio/region_mean"] > 0);
        Assert.False(trainer.UsesFusedLoss);
    }

    [Fact]
    public void Settings_ExposeTheNewObjectives()
    {
        var s = new GrpoSettings().With("importance-sampling-level", "sequence").With("advantage_estimator", "rloo")
            .With("dynamic_sampling", "true").With("dynamic_sampling_max_rounds", "5")
            .With("mask_truncated_completions", "true");
        Assert.Equal(ImportanceSamplingLevel.Sequence, s.Trainer.ImportanceSamplingLevel);
        Assert.Equal(AdvantageEstimator.Rloo, s.Trainer.AdvantageEstimator);
        Assert.True(s.Trainer.DynamicSampling);
        Assert.Equal(5, s.Trainer.DynamicSamplingMaxRounds);
        Assert.True(s.Trainer.MaskTruncatedCompletions);
        var json = s.ToJson();
        Assert.Equal("sequence", json["importance_sampling_level"]!.GetValue<string>());
        Assert.Equal("rloo", json["advantage_estimator"]!.GetValue<string>());
        var ex = Assert.Throws<ArgumentException>(() => s.With("importance_sampling_level", "word"));
        Assert.Contains("importance_sampling_level", ex.Message);
    }
}
