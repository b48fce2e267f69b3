using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL;

public class RewardTests
{
    private static readonly Problem P = new("arithmetic", "What is 15 * 17?", "255", 4, "15*17");

    private static RewardInput In(string text, int tokens = 10, bool truncated = false) => new(P, text, tokens, truncated);

    [Fact]
    public void Accuracy_UsesLastBoxed_Numerically()
    {
        var acc = new AccuracyReward(new ArithmeticTask());
        Assert.Equal(1f, acc.Score(In(@"<think>15 * 17 = 150 + 105 = 255</think> \boxed{255}")));
        Assert.Equal(1f, acc.Score(In(@"\boxed{250} no wait \boxed{255.0}")));
        Assert.Equal(0f, acc.Score(In(@"\boxed{255} no wait \boxed{250}")));
        Assert.Equal(0f, acc.Score(In("255")));
        Assert.Null(acc.Score(new RewardInput(P with { Answer = "" }, @"\boxed{1}", 3, false)));
    }

    [Fact]
    public void Format_NeedsOneThinkBlockBeforeTheBoxedAnswer()
    {
        var fmt = new FormatReward();
        Assert.Equal(1f, fmt.Score(In(@"<think>150 + 105</think> The answer is \boxed{255}.")));
        Assert.Equal(0f, fmt.Score(In(@"\boxed{255} <think>x</think>")));
        Assert.Equal(0f, fmt.Score(In(@"<think>a</think><think>b</think>\boxed{1}")));
        Assert.Equal(0f, fmt.Score(In(@"<think> </think>\boxed{1}")));
        Assert.Equal(0f, fmt.Score(In(@"<think>a \boxed{1}")));
        Assert.Equal(1f, new FormatReward(thinkPrefilled: true).Score(In(@"a</think>\boxed{1}")));
    }

    [Fact]
    public void Charset_ShareOfAllowedReasoningChars_SkipWithoutReasoning()
    {
        var cs = new CharsetReward();
        Assert.Equal(1f, cs.Score(In(@"<think>1 + 2</think>\boxed{3}")));
        Assert.Equal(0.5f, cs.Score(In("<think>abéè</think>")));
        Assert.Null(cs.Score(In(@"\boxed{3}")));
    }

    [Fact]
    public void SoftOverlong_AsDapo()
    {
        var o = new SoftOverlongPunishment(maxLength: 100, cacheLength: 20);
        Assert.Equal(0f, o.Score(In("", 80)));
        Assert.Equal(-0.5f, o.Score(In("", 90)));
        Assert.Equal(-1f, o.Score(In("", 100)));
        Assert.Equal(-1f, o.Score(In("", 101)));
    }

    [Fact]
    public void RewardSet_WeightsSkipsAndSummaries()
    {
        var set = new RewardSet().Add(new AccuracyReward(new ArithmeticTask()), 1f).Add(new FormatReward(), 0.5f).Add(new CharsetReward(), 2f);
        var s = set.Score([In(@"<think>x</think>\boxed{255}"), In(@"\boxed{255}"), In("nothing")]);
        Assert.Equal(["accuracy", "format", "charset"], s.Names);
        Assert.Equal(1f + 0.5f + 2f, s.Total[0]);
        Assert.Equal(1f, s.Total[1]);                 // charset skipped: left out of the sum
        Assert.True(float.IsNaN(s.PerFunction[2][1]));
        Assert.Equal(0f, s.Total[2]);
        var acc = s.Summary().First();
        Assert.Equal(2.0 / 3, acc.Mean, 6);
        Assert.Throws<ArgumentException>(() => set.Add(new FormatReward()));
    }
}
