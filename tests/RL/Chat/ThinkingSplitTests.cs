using NativeReasoner.RL.Chat;
using Xunit;

namespace NativeReasoner.Tests.RL.Chat;

/// <summary>Reasoning/answer split of R1-family outputs, in one piece and streamed.</summary>
public class ThinkingSplitTests
{
    [Theory]
    [InlineData("<think>\nadd them\n</think>\n\nThe answer is 4.", false, "add them", "The answer is 4.", true, true)]
    [InlineData("  <think>x</think>y", false, "x", "y", true, true)]
    [InlineData("add them\n</think>\n\n4", false, "add them", "4", true, true)]
    [InlineData("add them\n</think>\n\n4", true, "add them", "4", true, true)]
    [InlineData("<think>\nstill going and then the tokens ran ou", false, "still going and then the tokens ran ou", "",
        true, false)]
    [InlineData("forced thinking cut off\n", true, "forced thinking cut off", "", true, false)]
    [InlineData("The answer is 4.", false, "", "The answer is 4.", false, false)]
    [InlineData("", false, "", "", false, false)]
    [InlineData("", true, "", "", true, false)]
    [InlineData("<think></think>answer", false, "", "answer", true, true)]
    [InlineData("<think>\n\n</think>\n\n", false, "", "", true, true)]
    [InlineData("<think>a</think> b </think> c", false, "a", "b </think> c", true, true)]
    [InlineData("<think>a</thinking>b", false, "a</thinking>b", "", true, false)]
    [InlineData("Ünï 😀<think>x</think>y", false, "Ünï 😀<think>x", "y", true, true)]
    public void Split_EdgeCases(string output, bool forced, string reasoning, string answer, bool hasThinking,
        bool closed)
    {
        var parts = ThinkingSplit.Split(output, forced);
        Assert.Equal(new ThinkingParts(reasoning, answer, hasThinking, closed), parts);
    }

    public static TheoryData<string, bool> StreamCases => new()
    {
        { "<think>\nadd them\n</think>\n\nThe answer is 4.", false },
        { "  <think>x</think>y", false },
        { "add them\n</think>\n\n4", true },
        { "<think>\nstill going and then the tokens ran ou", false },
        { "forced thinking cut off\n", true },
        { "The answer is 4.", false },
        { "<thinking is not a tag", false },
        { "", false },
        { "<think>\n\n</think>\n\n", false },
        { "<think>a \n b</think> c </think> d", false },
        { "<think>a</thi", false },
        { "<think>ends with a partial tag </", true },
        { "<think>Ünï 😀 \t</think>\n答え", false },
    };

    [Theory]
    [MemberData(nameof(StreamCases))]
    public void Stream_AnyPiecing_EqualsSplit(string output, bool forced)
    {
        var expected = ThinkingSplit.Split(output, forced);
        foreach (int size in new[] { 1, 2, 3, 5, 1000 })
        {
            var stream = new ThinkingStream(forced);
            string reasoning = "", answer = "";
            for (int i = 0; i < output.Length; i += size)
            {
                var d = stream.Push(output.Substring(i, Math.Min(size, output.Length - i)));
                reasoning += d.Reasoning;
                answer += d.Answer;
                Assert.DoesNotContain("</think>", d.Reasoning);
            }
            var last = stream.Finish();
            reasoning += last.Reasoning;
            answer += last.Answer;
            Assert.Equal(expected, stream.Result);
            Assert.Equal(expected.Reasoning, reasoning);
            Assert.Equal(expected.Answer, answer);
        }
    }

    [Fact]
    public void Stream_ReleasesReasoningBeforeTheEnd()
    {
        var stream = new ThinkingStream();
        Assert.Equal(new ThinkingDelta("", ""), stream.Push("<thi"));
        Assert.Equal(new ThinkingDelta("Let me", ""), stream.Push("nk>\nLet me"));
        Assert.Equal(new ThinkingDelta(" see", ""), stream.Push(" see\n</"));
        Assert.False(stream.InAnswer);
        Assert.Equal(new ThinkingDelta("", "4"), stream.Push("think>\n\n4"));
        Assert.True(stream.InAnswer);
        Assert.Equal(new ThinkingDelta("", ""), stream.Finish());
    }

    [Fact]
    public void PromptForcesThinking_WhenTheTemplateEndsWithThinkOpen()
    {
        Assert.True(ThinkingSplit.PromptForcesThinking("<｜User｜>hi<｜Assistant｜><think>\n"));
        Assert.False(ThinkingSplit.PromptForcesThinking("<｜User｜>hi<｜Assistant｜>"));
        Assert.False(ThinkingSplit.PromptForcesThinking("<think>\n\n</think>\n\n"));
    }
}
