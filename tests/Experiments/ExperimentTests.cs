using System.Text.Json.Nodes;
using NativeReasoner.Cli;
using NativeReasoner.RL;
using NativeReasoner.RL.Experiments;
using Xunit;

namespace NativeReasoner.Tests.Experiments;

/// <summary>
/// `nr experiment` at the tiny scale: every arm of every seed runs and writes its summary, the aggregate over seeds
/// is the mean and sample standard deviation of those summaries, and a second run keeps finished arms.
/// </summary>
public sealed class ExperimentTests : IDisposable
{
    private readonly string _runs = Path.Combine(Path.GetTempPath(), "nr-experiment-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_runs)) Directory.Delete(_runs, true);
    }

    private ExperimentSettings Tiny(string name, params ulong[] seeds) => new()
    {
        Experiment = ExperimentCatalog.Get(name), Scale = ExperimentScale.Get("tiny"), Seeds = seeds,
        RunsDirectory = _runs,
    };

    [Fact]
    public void Controls_RunsEveryArm_AggregatesOverSeeds_AndResumeKeepsFinishedArms()
    {
        var s = Tiny("controls", 0, 1);
        var log = new List<string>();
        var results = ExperimentRunner.Run(s, log.Add);
        Assert.Null(results["interrupted"]);
        foreach (var arm in s.Experiment.Arms)
            foreach (var seed in s.Seeds)
            {
                var dir = Path.Combine(s.Directory, arm.Name, $"seed-{seed}");
                Assert.True(File.Exists(Path.Combine(dir, "summary.json")), $"{arm.Name} seed {seed}");
                Assert.True(File.Exists(Path.Combine(dir, "metrics.jsonl")), $"{arm.Name} seed {seed} metrics");
            }
        foreach (var f in new[] { "results.json", "results.md", "report.html", "accuracy.png", "pass1_by_level.png",
                     "heldout_curve.png", "rollout_accuracy.png" })
            Assert.True(File.Exists(Path.Combine(s.Directory, f)), f);

        // The aggregate of an arm is the mean and sample std of its seeds' summaries.
        var rows = results["rows"]!.AsArray();
        Assert.Equal(["pre-trained", "grpo", "random-reward", "format-only", "self-sft"],
            rows.Select(r => r!["name"]!.GetValue<string>()));
        foreach (var arm in s.Experiment.Arms)
        {
            var values = s.Seeds.Select(seed => JsonNode.Parse(File.ReadAllText(Path.Combine(s.Directory, arm.Name,
                $"seed-{seed}", "summary.json")))!["after"]!["sampled"]!["pass@1"]!.GetValue<double>()).ToArray();
            var row = rows.Single(r => r!["name"]!.GetValue<string>() == arm.Name)!;
            Assert.Equal(2, row["pass@1"]!["n"]!.GetValue<int>());
            Assert.Equal(values.Average(), row["pass@1"]!["mean"]!.GetValue<double>(), 12);
            double std = Math.Abs(values[0] - values[1]) / Math.Sqrt(2);
            Assert.Equal(std, row["pass@1"]!["std"]!.GetValue<double>(), 12);
        }
        // Same compute: every arm sampled the same number of sequences.
        var sampled = s.Experiment.Arms.Select(a => JsonNode.Parse(File.ReadAllText(Path.Combine(s.Directory,
            a.Name, "seed-0", "summary.json")))!["compute"]!["sampled_sequences"]!.GetValue<long>()).Distinct();
        Assert.Equal([2L * 2 * 2], sampled);

        // Resume: nothing is trained again, and the summaries are untouched.
        var stamps = Directory.GetFiles(s.Directory, "summary.json", SearchOption.AllDirectories)
            .ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var again = new List<string>();
        ExperimentRunner.Run(s, again.Add);
        Assert.Equal(s.Experiment.Arms.Count * s.Seeds.Count, again.Count(l => l.Contains("finished before, kept")));
        Assert.Equal(s.Seeds.Count, again.Count(l => l.Contains("kept from before")));
        Assert.DoesNotContain(again, l => l.Contains("step 1/"));
        foreach (var (f, t) in stamps) Assert.Equal(t, File.GetLastWriteTimeUtc(f));
    }

    [Fact]
    public void Resume_RerunsOnlyTheMissingArm_AndANewSeedAddsToTheAggregate()
    {
        var s = Tiny("objectives", 0);
        ExperimentRunner.Run(s, _ => { });
        File.Delete(Path.Combine(s.Directory, "gspo", "seed-0", "summary.json"));
        var log = new List<string>();
        var results = ExperimentRunner.Run(s with { Seeds = [0, 5] }, log.Add);
        // Seed 0 trains only the arm whose summary went; seed 5 is new and runs everything.
        Assert.Contains(log, l => l.StartsWith("gspo seed 0: greedy", StringComparison.Ordinal));
        foreach (var arm in new[] { "grpo", "grpo-replay", "grpo-dynamic" })
        {
            Assert.Contains(log, l => l.StartsWith($"{arm} seed 0: finished before, kept", StringComparison.Ordinal));
            Assert.Contains(log, l => l.StartsWith($"{arm} seed 5: greedy", StringComparison.Ordinal));
        }
        foreach (var row in results["rows"]!.AsArray())
            Assert.Equal(2, row!["pass@1"]!["n"]!.GetValue<int>());
        // The routing-replay arm measured the router shift (μ = 2 records the rollout's routing).
        var replay = JsonNode.Parse(File.ReadAllText(Path.Combine(s.Directory, "grpo-replay", "seed-0",
            "summary.json")))!;
        Assert.True(replay["trainer"]!["routing_replay"]!.GetValue<bool>());
        Assert.Equal(2, replay["trainer"]!["num_iterations"]!.GetValue<int>());
        Assert.NotNull(replay["training"]!["router_shift/mean"]);
    }

    [Fact]
    public void Distill_TrainsTeacherAndStudent_AndBothStudentArmsRunOnTheQwen2Student()
    {
        var s = Tiny("distill", 3);
        var results = ExperimentRunner.Run(s, _ => { });
        Assert.Equal(["pre-trained", "student pre-trained", "teacher", "student-distill", "student-grpo"],
            results["rows"]!.AsArray().Select(r => r!["name"]!.GetValue<string>()));
        Assert.True(File.Exists(Path.Combine(s.Directory, "seed-3", "teacher", "model", "config.json")));
        foreach (var arm in new[] { "student-distill", "student-grpo" })
        {
            var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(s.Directory, arm, "seed-3", "summary.json")))!;
            Assert.Equal("qwen2", summary["model"]!.GetValue<string>());
        }
    }

    [Fact]
    public void Stat_IsTheMeanAndSampleStdOfTheFiniteValues()
    {
        var stat = ExperimentResults.Stat.Of([0.5, 0.7, double.NaN, 0.9]);
        Assert.Equal(3, stat.N);
        Assert.Equal(0.7, stat.Mean, 12);
        Assert.Equal(0.2, stat.Std, 12);
        Assert.Equal("70.0 ± 20.0", stat.Percent());
        var one = ExperimentResults.Stat.Of([0.25]);
        Assert.True(double.IsNaN(one.Std));
        Assert.Equal("25.0", one.Percent());
        Assert.Equal("–", ExperimentResults.Stat.Of([]).Percent());
    }

    [Fact]
    public void ADirectoryOfAnotherScale_IsRefused()
    {
        var s = Tiny("controls", 0);
        Directory.CreateDirectory(s.Directory);
        File.WriteAllText(Path.Combine(s.Directory, "experiment.json"),
            """{"experiment":"controls","scale":"small"}""");
        var e = Assert.Throws<ArgumentException>(() => ExperimentRunner.Run(s, _ => { }));
        Assert.Contains("--scale small", e.Message);
    }

    [Fact]
    public void BadNamesAndSeeds_AreErrorsNamingThem()
    {
        Assert.Contains("known: controls, objectives, distill",
            Assert.Throws<ArgumentException>(() => ExperimentCatalog.Get("nope")).Message);
        Assert.Contains("--scale 'huge'", Assert.Throws<ArgumentException>(() => ExperimentScale.Get("huge")).Message);
        Assert.Contains("--seeds", Assert.Throws<ArgumentException>(() => ExperimentCommand.ParseSeeds("0,x")).Message);
        Assert.Contains("repeats", Assert.Throws<ArgumentException>(() =>
            ExperimentRunner.Run(Tiny("controls", 1, 1), _ => { })).Message);
        Assert.Equal([0UL, 1UL, 2UL], ExperimentCommand.ParseSeeds("0, 1,2"));
    }

    [Fact]
    public void RandomReward_IsAFairCoinIndependentOfCorrectness_AndTheSameOnEveryScoring()
    {
        var task = TaskRegistry.Create("ladder");
        var problems = task.Generate(Split.Train, 400, 7);
        var reward = new RandomReward(seed: 11);
        var correct = problems.Select(p => new RewardInput(p, $"<think>x</think>\\boxed{{{p.Answer}}}", 5, false))
            .ToArray();
        var wrong = problems.Select(p => new RewardInput(p, "\\boxed{-1}", 5, false)).ToArray();
        double meanCorrect = correct.Average(i => reward.Score(i)!.Value);
        double meanWrong = wrong.Average(i => reward.Score(i)!.Value);
        // 400 fair coins: the mean lies within 0.5 ± 0.1 with overwhelming probability (5 standard deviations).
        Assert.InRange(meanCorrect, 0.4, 0.6);
        Assert.InRange(meanWrong, 0.4, 0.6);
        Assert.All(correct, i => Assert.Equal(reward.Score(i), reward.Score(i)));
        Assert.Equal(correct.Select(i => reward.Score(i)), correct.Select(i => new RandomReward(11).Score(i)));
        Assert.NotEqual(correct.Select(i => reward.Score(i)), correct.Select(i => new RandomReward(12).Score(i)));

        // The control arms log accuracy but are not rewarded for it.
        var random = ExperimentRunner.Rewards(ArmReward.Random, task, 11);
        var formatOnly = ExperimentRunner.Rewards(ArmReward.FormatOnly, task, 11);
        Assert.Equal(0f, random.Items.Single(i => i.Fn.Name == "accuracy").Weight);
        Assert.Equal(0f, formatOnly.Items.Single(i => i.Fn.Name == "accuracy").Weight);
        var wrongAnswer = correct[0] with { Completion = $"<think>x</think>\\boxed{{{problems[0].Answer}1}}" };
        var input = new[] { correct[0], wrongAnswer };
        var scores = formatOnly.Score(input);
        Assert.Equal(scores.Total[0], scores.Total[1]);
        Assert.Equal([1f, 0f], scores.PerFunction[1]);
    }
}
