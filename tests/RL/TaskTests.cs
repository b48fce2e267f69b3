using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

public class TaskTests
{
    public static TheoryData<string> TaskNames() => new(TaskRegistry.Names);

    [Theory, MemberData(nameof(TaskNames))]
    public void Splits_AreDisjoint_Seeded_AndCoverEveryLevel(string name)
    {
        var task = TaskRegistry.Create(name);
        var train = task.Generate(Split.Train, 400, seed: 7);
        var test = task.Generate(Split.Test, 100, seed: 7);
        Assert.Empty(train.Select(p => p.Key).Intersect(test.Select(p => p.Key)));
        Assert.All(train, p => Assert.False(VerifiableTask.IsHeldOut(p.Key)));
        Assert.All(test, p => Assert.True(VerifiableTask.IsHeldOut(p.Key)));
        // Same seed, same problems; another seed, other problems.
        Assert.Equal(train.Select(p => p.Prompt), task.Generate(Split.Train, 400, seed: 7).Select(p => p.Prompt));
        Assert.NotEqual(train.Select(p => p.Prompt), task.Generate(Split.Train, 400, seed: 8).Select(p => p.Prompt));
        Assert.Equal(Enumerable.Range(1, task.MaxDifficulty), train.Select(p => p.Difficulty).Distinct().Order());
        Assert.All(task.Generate(Split.Train, 10, 1, difficulty: task.MaxDifficulty), p => Assert.Equal(task.MaxDifficulty, p.Difficulty));
    }

    [Theory, MemberData(nameof(TaskNames))]
    public void GroundTruth_PassesItsOwnChecker(string name)
    {
        var task = TaskRegistry.Create(name);
        foreach (var p in task.Generate(Split.Train, 200, seed: 3))
        {
            if (p.Numbers == null)
            {
                Assert.True(task.Check(p, p.Answer), p.Prompt);
                Assert.False(task.Check(p, (long.Parse(p.Answer) + 1).ToString()), p.Prompt);
            }
            else Assert.False(task.Check(p, p.Answer + " + 1"), p.Prompt);
        }
    }

    [Fact]
    public void Prompts_ReadAsSpecified()
    {
        var arith = TaskRegistry.Create("arithmetic").Generate(Split.Train, 5, 1, difficulty: 4);
        Assert.All(arith, p => Assert.Matches(@"^What is \d\d \* \d\d\?$", p.Prompt));
        var lin = TaskRegistry.Create("linear").Generate(Split.Train, 5, 1, difficulty: 3);
        Assert.All(lin, p => Assert.Matches(@"^\d?x [+-] \d+ = -?\d+\. What is \d?x [+-] \d+\?$", p.Prompt));
        var word = TaskRegistry.Create("word").Generate(Split.Train, 5, 1, difficulty: 2);
        Assert.All(word, p => Assert.Contains("How many", p.Prompt));
    }

    [Fact]
    public void Countdown_ChecksNumbersOnceAndExactValue()
    {
        var task = new CountdownTask();
        var p = new Problem("countdown", "", "46", 1, "k", [3, 7, 25]);
        Assert.True(task.Check(p, "3 * 7 + 25"));
        Assert.True(task.Check(p, "(25 + 7 * 3) = 46"));
        Assert.True(task.Check(p, @"3 \times 7 + 25"));
        Assert.False(task.Check(p, "3 * 7 + 25 + 3 - 3"));   // 3 used three times
        Assert.False(task.Check(p, "21 + 25"));               // 21 is not given
        Assert.False(task.Check(p, "3 * 7 + 24"));
        Assert.False(task.Check(p, "3 * 7 + 25.0"));
        Assert.False(task.Check(p, "7 / 0 + 25"));
        Assert.False(task.Check(p, "import os"));
        var q = new Problem("countdown", "", "2", 1, "k", [7, 3, 2]);
        Assert.True(task.Check(q, "(7 - 3) / 2"));
        Assert.False(task.Check(q, "7 / 3"));                 // not an integer: no rounding
        // Every generated target is reachable by construction; spot-check the generator's numbers.
        Assert.All(task.Generate(Split.Test, 20, 5), x => Assert.Equal(x.Difficulty switch { 1 or 2 => 3, 3 => 4, _ => 5 }, x.Numbers!.Count));
    }

    [Fact]
    public void UnknownTask_ListsKnownOnes()
    {
        var ex = Assert.Throws<ArgumentException>(() => TaskRegistry.Create("sudoku"));
        Assert.Contains("unknown task 'sudoku'", ex.Message);
        foreach (var n in new[] { "arithmetic", "countdown", "linear", "word" }) Assert.Contains(n, ex.Message);
    }

    [Theory]
    [InlineData("1,234", 1234)]
    [InlineData(" -5 ", -5)]
    [InlineData("$12.50$", 12.5)]
    [InlineData(@"\frac{3}{4}", 0.75)]
    [InlineData("6/4", 1.5)]
    [InlineData("42.", 42)]
    public void Numbers_Parse(string s, double expected)
    {
        Assert.True(AnswerParsing.TryParseNumber(s, out var v));
        Assert.Equal(expected, v, 9);
    }

    [Fact]
    public void Boxed_LastOneCounts_BracesBalanced()
    {
        Assert.Equal("7", AnswerParsing.LastBoxed(@"\boxed{3} then \boxed{7}"));
        Assert.Equal(@"\frac{1}{2}", AnswerParsing.LastBoxed(@"so \boxed{\frac{1}{2}}."));
        Assert.Null(AnswerParsing.LastBoxed(@"\boxed{3} and \boxed{7"));
        Assert.Null(AnswerParsing.LastBoxed("no answer"));
        Assert.False(AnswerParsing.TryParseNumber("12,34", out _));
        Assert.False(AnswerParsing.TryParseNumber("x", out _));
    }
}

public class ThinkTraceTests
{
    [Theory]
    [InlineData("arithmetic")]
    [InlineData("linear")]
    [InlineData("word")]
    public void Traces_AreCorrect_WellFormed_AndEndAtTheAnswer(string name)
    {
        var task = TaskRegistry.Create(name);
        var acc = new AccuracyReward(task);
        foreach (var p in task.Generate(Split.Train, 100, seed: 11))
        {
            var text = ThinkTraces.Completion(p, think: true);
            var input = new RewardInput(p, text, text.Length, false);
            Assert.Equal(1f, acc.Score(input));
            Assert.True(FormatReward.IsWellFormed(text, false), text);
            // Every "= v" chain ends at the answer; each step is arithmetic the checker would accept.
            Assert.EndsWith("= " + p.Answer, ThinkTraces.Trace(p));
            Assert.Equal(1f, acc.Score(input with { Completion = ThinkTraces.Completion(p, think: false) }));
        }
        Assert.Equal("15 * 17 = 15 * 10 + 15 * 7 = 150 + 105 = 255", ThinkTraces.Trace(new Problem("arithmetic", "", "255", 4, "15*17")));
    }

    [Fact]
    public void LadderTraces_EveryStepEvaluatesToTheAnswer_AndGrowWithTheLevel()
    {
        var task = TaskRegistry.Create("ladder");
        var acc = new AccuracyReward(task);
        var meanLength = new double[task.MaxDifficulty + 1];
        foreach (var p in task.Generate(Split.Train, 500, seed: 5))
        {
            var text = ThinkTraces.Completion(p, think: true);
            Assert.Equal(1f, acc.Score(new RewardInput(p, text, text.Length, false)));
            Assert.True(FormatReward.IsWellFormed(text, false), text);
            // "47*6,7*6=42,40*6=240,240+42=282": every side of every "=" in a step is a sum of products worth the
            // same; the first step (the problem) and the last (the answer) are worth the answer.
            static long Value(string side) => side.Split('+').Sum(t => t.Split('*').Aggregate(1L, (x, f) => x * long.Parse(f)));
            var steps = LadderTask.Trace(p.Key).Split(',');
            foreach (var step in steps)
            {
                var sides = step.Split('=');
                Assert.All(sides, side => Assert.Equal(Value(sides[0]), Value(side)));
            }
            Assert.Equal(long.Parse(p.Answer), Value(steps[0].Split('=')[0]));
            Assert.Equal(p.Answer, steps[^1].Split('=')[^1]);
            meanLength[p.Difficulty] += LadderTask.Trace(p.Key).Length / 100.0;
        }
        // Multi-step levels think longer: 3 beyond the one-fact levels 1–2, and 4–5 (two facts and a sum) beyond 3.
        Assert.True(meanLength[3] > Math.Max(meanLength[1], meanLength[2]));
        Assert.True(Math.Min(meanLength[4], meanLength[5]) > meanLength[3]);
        Assert.Equal("47*6,7*6=42,40*6=240,240+42=240+40+2=280+2=282", LadderTask.Trace("47*6"));
        Assert.Equal("47+38,7+8=15,40+30=70,70+15=70+10+5=80+5=85", LadderTask.Trace("47+38"));
        // Every one-digit sum and product appears as a step of some level-4 / level-5 training trace, so no held-out
        // level-1 or level-2 problem asks a fact the training traces never state.
        var stated = task.Generate(Split.Train, 4000, seed: 6).Where(p => p.Difficulty >= 4)
            .SelectMany(p => LadderTask.Trace(p.Key).Split(',')).ToHashSet();
        foreach (var p in task.Generate(Split.Test, 200, seed: 7).Where(p => p.Difficulty <= 2))
            Assert.Contains($"{p.Key}={p.Answer}", stated);
    }
}
