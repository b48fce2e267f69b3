using System.Text.Json.Nodes;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

/// <summary>pass@k, maj@k and the sampled evaluation of <c>nr eval --samples K</c>.</summary>
public class PassAtKTests
{
    private static readonly PromptTemplate PlainTemplate = new("{question}\n");

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    [Fact]
    public void Estimate_HandComputedCases()
    {
        // 1 − C(n−c, k)/C(n, k): C(3,2)/C(5,2) = 3/10; C(7,5)/C(10,5) = 21/252; C(6,2)/C(8,2) = 15/28.
        Assert.Equal(0.5, PassAtK.Estimate(2, 1, 1), 15);
        Assert.Equal(0.7, PassAtK.Estimate(5, 2, 2), 15);
        Assert.Equal(1 - 21.0 / 252, PassAtK.Estimate(10, 3, 5), 15);
        Assert.Equal(1 - 15.0 / 28, PassAtK.Estimate(8, 2, 2), 15);
        // pass@1 is the share of correct samples.
        Assert.Equal(3.0 / 8, PassAtK.Estimate(8, 3, 1), 15);
    }

    [Fact]
    public void Estimate_Edges()
    {
        for (int n = 1; n <= 9; n++)
            for (int k = 1; k <= n; k++)
            {
                Assert.Equal(0.0, PassAtK.Estimate(n, 0, k));      // c = 0: never
                Assert.Equal(1.0, PassAtK.Estimate(n, n, k));      // c = n: always
                if (n > 1) Assert.Equal(1.0, PassAtK.Estimate(n, 1, n)); // k = n: any correct sample is drawn
            }
        Assert.Equal(0.0, PassAtK.Estimate(1, 0, 1));
        // Large n where C(n, k) overflows a double: still a probability, close to its limit.
        double big = PassAtK.Estimate(5000, 1, 2500);
        Assert.Equal(0.5, big, 12);
    }

    [Fact]
    public void Estimate_BadArguments_NameTheValue()
    {
        Assert.Contains("k = 9", Assert.Throws<ArgumentException>(() => PassAtK.Estimate(8, 2, 9)).Message);
        Assert.Contains("k = 0", Assert.Throws<ArgumentException>(() => PassAtK.Estimate(8, 2, 0)).Message);
        Assert.Contains("c = 9", Assert.Throws<ArgumentException>(() => PassAtK.Estimate(8, 9, 1)).Message);
        Assert.Contains("c = -1", Assert.Throws<ArgumentException>(() => PassAtK.Estimate(8, -1, 1)).Message);
        Assert.Contains("n = 0", Assert.Throws<ArgumentException>(() => PassAtK.Estimate(0, 0, 1)).Message);
    }

    [Fact]
    public void Estimate_MatchesExactRationalReference()
    {
        // tests/reference/pass_at_k.py: exact binomials and fractions, every (n, c, k) up to n = 16 and large cases.
        var root = JsonNode.Parse(File.ReadAllText(Fixture("pass_at_k.json")))!;
        var cases = root["cases"]!.AsArray();
        Assert.True(cases.Count > 300);
        foreach (var c in cases)
        {
            int n = c!["n"]!.GetValue<int>(), correct = c["c"]!.GetValue<int>(), k = c["k"]!.GetValue<int>();
            double want = c["pass_at_k"]!.GetValue<double>(), got = PassAtK.Estimate(n, correct, k);
            Assert.True(Math.Abs(got - want) <= 1e-12 * Math.Max(1, Math.Abs(want)),
                $"n {n} c {correct} k {k}: {got} vs {want}");
        }
    }

    [Fact]
    public void MajorityIndex_VotesOnParsedAnswers_TiesToTheFirst_NoAnswerNoVote()
    {
        Assert.Equal(1, PassAtK.MajorityIndex(["3", "4", "4.0", "3 "], 3)); // 4 and 4.0 are one answer
        Assert.Equal(0, PassAtK.MajorityIndex(["3", "4", "4.0", "3 "], 4)); // 2 : 2, 3 came first
        Assert.Equal(0, PassAtK.MajorityIndex(["3", "4", "4", "4"], 1));
        Assert.Equal(2, PassAtK.MajorityIndex([null, " ", "x", null], 4));
        Assert.Equal(-1, PassAtK.MajorityIndex([null, "", null], 3));
        var e = Assert.Throws<ArgumentException>(() => PassAtK.MajorityIndex(["1", "2", "3"], 4));
        Assert.Contains("k = 4", e.Message);
        Assert.Equal("4", PassAtK.AnswerKey("04"));
        Assert.Null(PassAtK.AnswerKey("  "));
    }

    [Fact]
    public void SampledEvaluation_ScoresEveryLevelAndOverall()
    {
        var tokenizer = new CharTokenizer();
        var task = TaskRegistry.Create("arithmetic");
        Problem P(string answer, int level) => new(task.Name, $"What is {answer}?", answer, level, "k" + answer);
        var problems = new[] { P("7", 1), P("5", 1), P("12", 2), P("9", 2) };
        // Four samples per problem, in order; "x" has no boxed answer.
        string[] answers = ["7", "7", "3", "x", "4", "6", "5", "5", "x", "x", "x", "x", "9.0", "9", "9", "9"];
        string Completion(int i) => answers[i] == "x" ? "no answer" :
            (i % 2 == 0 ? "<think>so</think>" : "") + "\\boxed{" + answers[i] + "}";
        var policy = new ScriptedPolicy(tokenizer, Completion);
        var options = new GenerationOptions
        {
            MaxNewTokens = 32, Temperature = 0.6f, TopP = 0.95f, EosTokenIds = [tokenizer.EosId],
        };
        var r = SampledEvaluation.Run(policy, tokenizer, PlainTemplate, task, problems, options, samples: 4);

        // Per problem (n = 4): c = 2, 2, 0, 4 → pass@2 = 1 − C(2,2)/C(4,2) = 5/6 for the first two.
        AssertClose([0.5, 5.0 / 6, 1, 1], r.ByDifficulty[1].PassAtK);
        AssertClose([0.5, 0.5, 0.5, 0.5], r.ByDifficulty[2].PassAtK);
        AssertClose([0.5, 2.0 / 3, 0.75, 0.75], r.Overall.PassAtK);
        // maj@k over the first k samples: problem 2 votes 4 | 4 vs 6 (4 first) | three-way tie (4) | 5 wins 2 : 1 : 1.
        AssertClose([0.5, 0.5, 0.5, 1], r.ByDifficulty[1].MajAtK);
        AssertClose([0.5, 0.5, 0.5, 0.5], r.ByDifficulty[2].MajAtK);
        AssertClose([0.5, 0.5, 0.5, 0.75], r.Overall.MajAtK);
        Assert.Equal(0.5, r.Overall.Pass1);
        // Well-formed: the even samples that have an answer (6 of 16).
        Assert.Equal(6.0 / 16, r.Overall.FormatRate, 12);
        Assert.Equal(4, r.Completions.Count);
        Assert.All(r.Completions, c => Assert.Equal(4, c.Count));

        var json = r.ToJson();
        Assert.Equal(4, json["samples"]!.GetValue<int>());
        Assert.Equal(0.75, json["pass@4"]!.GetValue<double>(), 12);
        Assert.Equal(1.0, json["by_difficulty"]!["1"]!["maj@4"]!.GetValue<double>(), 12);
    }

    [Fact]
    public void SampledEvaluation_MatchesTheReferenceLevelMean()
    {
        // The fixture's level: 4 problems × 8 samples with 0, 3, 8 and 5 correct, its pass@k for k = 1…8.
        var level = JsonNode.Parse(File.ReadAllText(Fixture("pass_at_k.json")))!["level"]!;
        int[] correct = level["correct"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        var want = level["pass_at_k"]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
        var tokenizer = new CharTokenizer();
        var task = TaskRegistry.Create("arithmetic");
        var problems = correct.Select((_, i) => new Problem(task.Name, $"q{i}", "1", 1, $"k{i}")).ToArray();
        var policy = new ScriptedPolicy(tokenizer, i => "\\boxed{" + (i % 8 < correct[i / 8] ? "1" : "2") + "}");
        var options = new GenerationOptions { MaxNewTokens = 16, Temperature = 0.6f, EosTokenIds = [tokenizer.EosId] };
        var r = SampledEvaluation.Run(policy, tokenizer, PlainTemplate, task, problems, options, samples: 8);
        AssertClose(want, r.Overall.PassAtK);
    }

    [Fact]
    public void SampledEvaluation_BadSettings_ClearErrors()
    {
        var tokenizer = new CharTokenizer();
        var task = TaskRegistry.Create("arithmetic");
        var problems = task.Generate(Split.Test, 2, 0);
        var policy = new ScriptedPolicy(tokenizer, _ => "\\boxed{1}");
        var greedy = new GenerationOptions { MaxNewTokens = 8, Temperature = 0f, EosTokenIds = [tokenizer.EosId] };
        SampledEvalReport Run(IReadOnlyList<Problem> ps, GenerationOptions o, int k) =>
            SampledEvaluation.Run(policy, tokenizer, PlainTemplate, task, ps, o, k);
        Assert.Contains("temperature > 0", Assert.Throws<ArgumentException>(() => Run(problems, greedy, 4)).Message);
        var sampling = greedy with { Temperature = 1 };
        Assert.Contains("≥ 1, got 0", Assert.Throws<ArgumentException>(() => Run(problems, sampling, 0)).Message);
        Assert.Contains("got none", Assert.Throws<ArgumentException>(() => Run([], sampling, 2)).Message);
    }

    [Fact]
    public void EvalCommand_Samples_WritesPassAndMajByLevel()
    {
        var dir = GenerateEvalTests.ModelDir();
        try
        {
            var outPath = Path.Combine(dir, "eval.json");
            string[] eval = ["eval", "--model", dir, "--task", "arithmetic"];
            Assert.Equal(0, NativeReasoner.Cli.Program.Main([.. eval, "--n", "4", "--max-new-tokens", "4",
                "--samples", "3", "--temperature", "0.6", "--top-p", "0.95", "--out", outPath]));
            var o = JsonNode.Parse(File.ReadAllText(outPath))!;
            var sampled = o["sampled"]!;
            Assert.Equal(3, sampled["samples"]!.GetValue<int>());
            Assert.Equal(0.6, sampled["temperature"]!.GetValue<double>(), 6);
            foreach (var key in new[] { "pass@1", "pass@2", "pass@3", "maj@1", "maj@3" })
                Assert.InRange(sampled[key]!.GetValue<double>(), 0, 1);
            Assert.True(sampled["by_difficulty"]!.AsObject().Count >= 1);
            Assert.Equal(4, o["sampled_completions"]!.AsArray().Count);
            // Greedy stays as it was.
            Assert.InRange(o["accuracy"]!.GetValue<double>(), 0, 1);
            // Option values out of range are usage errors (exit 2).
            Assert.Equal(2, NativeReasoner.Cli.Program.Main([.. eval, "--samples", "0"]));
            Assert.Equal(2, NativeReasoner.Cli.Program.Main([.. eval, "--samples", "2", "--temperature", "0"]));
            Assert.Equal(2, NativeReasoner.Cli.Program.Main([.. eval, "--samples", "2", "--top-p", "1.5"]));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static void AssertClose(double[] want, double[] got)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= 1e-12, $"k = {i + 1}: {got[i]} vs {want[i]}");
    }
}
