using System.Text;
using System.Text.Json.Nodes;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL.Behaviour;

/// <summary>
/// Behaviour analytics on hand-made traces: thinking length of correct vs incorrect completions, verification steps
/// and self-corrections (by word and by restated claims), per level; the charts and the report.html table.
/// </summary>
public class BehaviourAnalyticsTests
{
    private static readonly CharTokenizer Tokenizer = new();
    private static readonly LadderTask Ladder = new();

    private static Problem P(string a, char op, string b, int level)
    {
        long x = long.Parse(a), y = long.Parse(b), answer = op == '+' ? x + y : x * y;
        return new Problem("ladder", $"What is {a} {op} {b}?", answer.ToString(), level, $"{a}{op}{b}");
    }

    [Theory]
    // A plain worked chain: nothing checked, nothing revised.
    [InlineData("47*6=40*6+7*6=240+42=282", 0, 0)]
    [InlineData("47+38=40+30+7+8=70+15=70+10+5=80+5=85", 0, 0)]
    [InlineData("47*6,7*6=42,40*6=240,240+42=240+40+2=280+2=282", 0, 0)]
    // The same expression given another value later: a self-correction, with or without a word.
    [InlineData("47*6=280, 47*6=282", 0, 1)]
    [InlineData("47*6=280, wait 47*6=282", 0, 1)]
    [InlineData("47*6=40*6+7*6=240+42=280; 40*6+7*6=282", 0, 1)]
    // Restated with the same value: a verification; a checking word alone is one too.
    [InlineData("47+8=55. Check: 47+8=55", 1, 0)]
    [InlineData("47+8=55, 55-8=47 so it checks out", 1, 0)]
    [InlineData("Let me verify this. Double-check the sum\nconfirmed", 3, 0)]
    // Words alone (an s1-style "Wait" from budget forcing counts as revising).
    [InlineData("15*17=255 Wait", 0, 1)]
    [InlineData("Actually I made a mistake", 0, 1)]
    // Both in one trace.
    [InlineData("6*7=42, 6*7=42, 9*8=71, 9*8=72", 1, 1)]
    // A marker word inside another word is not one.
    [InlineData("awaiting rechecked", 0, 0)]
    public void CountsVerificationAndSelfCorrectionSteps(string trace, int verifications, int corrections)
    {
        Assert.Equal((verifications, corrections), BehaviourAnalytics.CountSteps(trace));
    }

    [Fact]
    public void AnalysesTheTraceOnlyAndCountsItsTokens()
    {
        // The answer after </think> repeats 3+4=7 but is outside the trace: no verification.
        var b = BehaviourAnalytics.Analyse("<think>3+4=7</think>\\boxed{7} 3+4=7", Tokenizer);
        Assert.Equal(new TraceBehaviour(true, 5, 0, 0), b);
        // An unclosed trace runs to the end.
        Assert.Equal(new TraceBehaviour(true, 11, 1, 0),
            BehaviourAnalytics.Analyse("<think>3+4=7,3+4=7", Tokenizer));
        Assert.Equal(new TraceBehaviour(false, 0, 0, 0), BehaviourAnalytics.Analyse("\\boxed{7}", Tokenizer));
        // A prefilled <think>: the completion starts inside the trace.
        Assert.Equal(new TraceBehaviour(true, 4, 0, 1),
            BehaviourAnalytics.Analyse("wait</think>\\boxed{7}", Tokenizer, thinkPrefilled: true));
    }

    [Fact]
    public void SeparatesThinkingLengthOfCorrectAndIncorrectCompletionsPerLevel()
    {
        Problem[] problems =
        [
            P("3", '+', "4", 1), P("2", '+', "5", 1), P("1", '+', "1", 1),
            P("47", '*', "6", 5), P("47", '*', "6", 5), P("23", '*', "4", 5),
        ];
        string[] completions =
        [
            "<think>3+4=7</think>\\boxed{7}", // correct, 5 thinking tokens
            "\\boxed{7}",                     // correct, no thinking
            "<think>1+1=3</think>\\boxed{3}", // incorrect, 5
            "<think>47*6=40*6+7*6=240+42=282</think>\\boxed{282}",      // correct, 24
            "<think>47*6=280,wait 47*6=282</think>\\boxed{282}",        // correct, 22, corrects itself
            "<think>23*4=90,23*4=90 checked</think>\\boxed{90}",        // incorrect, 23, verifies
        ];
        var by = BehaviourAnalytics.Measure(problems, completions, Ladder, Tokenizer);
        Assert.Equal([0, 1, 5], by.Keys);

        var l1 = by[1];
        Assert.Equal((3, 2, 1, 1), (l1.Count, l1.Thinking, l1.CorrectThinking, l1.IncorrectThinking));
        Assert.Equal(5, l1.ThinkLengthCorrect);
        Assert.Equal(5, l1.ThinkLengthIncorrect);
        Assert.Equal(0, l1.VerificationRate);

        var l5 = by[5];
        Assert.Equal((3, 3, 2, 1), (l5.Count, l5.Thinking, l5.CorrectThinking, l5.IncorrectThinking));
        Assert.Equal((24 + 22) / 2.0, l5.ThinkLengthCorrect);
        Assert.Equal(23, l5.ThinkLengthIncorrect);
        Assert.Equal(1 / 3.0, l5.VerificationRate, 12);
        Assert.Equal(1 / 3.0, l5.SelfCorrectionRate, 12);
        Assert.Equal(1 / 3.0, l5.VerificationsPerTrace, 12);

        var all = by[0];
        Assert.Equal((6, 5, 3, 2), (all.Count, all.Thinking, all.CorrectThinking, all.IncorrectThinking));
        Assert.Equal((5 + 24 + 22) / 3.0, all.ThinkLengthCorrect, 12);
        Assert.Equal((5 + 23) / 2.0, all.ThinkLengthIncorrect, 12);
        Assert.Equal(1 / 5.0, all.VerificationRate, 12);
    }

    [Fact]
    public void NothingToAverageIsNaNInStatsNullInJsonAndAbsentFromMetrics()
    {
        var by = BehaviourAnalytics.Measure([P("3", '+', "4", 1)], ["\\boxed{7}"], Ladder, Tokenizer);
        Assert.True(double.IsNaN(by[1].ThinkLengthCorrect));
        Assert.True(double.IsNaN(by[1].VerificationRate));
        var json = BehaviourAnalytics.ToJson(by);
        Assert.Equal(["all", "1"], json.Select(kv => kv.Key));
        Assert.Null(json["1"]!["think_length_correct"]);
        Assert.Equal(0, json["1"]!["thinking"]!.GetValue<int>());
        Assert.Empty(BehaviourAnalytics.Metrics("eval/behaviour", by, perLevel: true));
    }

    [Fact]
    public void MetricsNameEveryLevelWhenAsked()
    {
        var by = BehaviourAnalytics.Measure([P("3", '+', "4", 1), P("47", '*', "6", 5)],
            ["<think>3+4=7</think>\\boxed{7}", "<think>47*6=281</think>\\boxed{281}"], Ladder, Tokenizer);
        var m = BehaviourAnalytics.Metrics("behaviour", by, perLevel: true).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(5, m["behaviour/think_length_correct"]);
        Assert.Equal(8, m["behaviour/think_length_incorrect"]);
        Assert.Equal(5, m["behaviour/think_length_correct/level_1"]);
        Assert.Equal(8, m["behaviour/think_length_incorrect/level_5"]);
        Assert.Equal(0, m["behaviour/verification_rate/level_5"]);
        Assert.False(m.ContainsKey("behaviour/think_length_incorrect/level_1"));
        var overall = BehaviourAnalytics.Metrics("behaviour", by, perLevel: false).Select(kv => kv.Key).ToArray();
        Assert.DoesNotContain(overall, k => k.Contains("/level_"));
        Assert.Contains("behaviour/self_correction_rate", overall);
    }

    [Fact]
    public void MismatchedCompletionsAreRefusedWithTheCounts()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            BehaviourAnalytics.Measure([P("3", '+', "4", 1)], [], Ladder, Tokenizer));
        Assert.Contains("0 completions for 1 problems", e.Message);
    }

    [Fact]
    public void ChartsAndReportShowTheBehaviour()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-behaviour-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var m = new StringBuilder();
            for (int s = 1; s <= 8; s++)
            {
                m.Append($"{{\"phase\": 1, \"step\": {s}, \"reward\": 0.5, " +
                         $"\"behaviour/think_length_correct\": {10 + s}, " +
                         $"\"behaviour/think_length_incorrect\": {20 + s}, \"behaviour/verification_rate\": 0.25");
                if (s % 2 == 0)
                    m.Append($", \"eval/behaviour/think_length_correct\": {12 + s}, " +
                             $"\"eval/behaviour/think_length_correct/level_1\": {5 + s}, " +
                             $"\"eval/behaviour/think_length_incorrect/level_2\": {30 + s}, " +
                             "\"eval/behaviour/self_correction_rate\": 0.1");
                m.Append("}\n");
            }
            File.WriteAllText(Path.Combine(dir, "metrics.jsonl"), m.ToString());
            var before = BehaviourAnalytics.ToJson(BehaviourAnalytics.Measure(
                [P("3", '+', "4", 1), P("47", '*', "6", 2)], ["\\boxed{7}", "<think>47*6=281</think>\\boxed{281}"],
                Ladder, Tokenizer));
            var after = BehaviourAnalytics.ToJson(BehaviourAnalytics.Measure(
                [P("3", '+', "4", 1), P("47", '*', "6", 2)],
                ["<think>3+4=7</think>\\boxed{7}", "<think>47*6=280,wait 47*6=282</think>\\boxed{282}"],
                Ladder, Tokenizer));
            var summary = new JsonObject
            {
                ["task"] = "ladder",
                ["after_pretraining"] = new JsonObject { ["accuracy"] = 0.5, ["behaviour"] = before },
                ["after_rl"] = new JsonObject { ["accuracy"] = 1.0, ["behaviour"] = after },
            };
            File.WriteAllText(Path.Combine(dir, "summary.json"), summary.ToJsonString());
            var page = File.ReadAllText(RunReport.Write(dir));
            foreach (var chart in new[]
                     {
                         "behaviour_think_length.png", "behaviour_rates.png", "behaviour_think_length_by_level.png",
                         "behaviour_by_difficulty.png",
                     })
            {
                var png = File.ReadAllBytes(Path.Combine(dir, chart));
                Assert.True(png.Length > 1000, $"{chart} is {png.Length} bytes");
                Assert.Contains($"src=\"{chart}\"", page);
            }
            Assert.Contains("Behaviour inside the traces", page);
            Assert.Contains("self-correction rate", page);
            // Level 2 after GRPO: one correct thinking completion of 22 tokens that corrects itself.
            Assert.Contains("<td>22</td>", page);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
