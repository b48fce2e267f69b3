using NativeReasoner.Serving;
using Xunit;

namespace NativeReasoner.Tests.Serving;

public class StopSequenceFilterTests
{
    [Theory]
    [InlineData("alpha beta gamma", new[] { "beta" }, "alpha ")]
    [InlineData("alpha beta gamma", new[] { "gamma", "a b" }, "alph")]
    [InlineData("aaab", new[] { "aab" }, "a")]
    [InlineData("no stop here", new[] { "zzz", "here!" }, "no stop here")]
    [InlineData("ends with a prefix he", new[] { "here" }, "ends with a prefix he")]
    public void EveryWayOfSplittingTheText_GivesTheOnePieceCut(string text, string[] stops, string expected)
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 200; trial++)
        {
            var filter = new StopSequenceFilter(stops);
            var output = new System.Text.StringBuilder();
            int at = 0;
            while (at < text.Length)
            {
                int n = trial == 0 ? 1 : rng.Next(0, 5);
                n = Math.Min(n, text.Length - at);
                output.Append(filter.Push(text.Substring(at, n)));
                at += n;
            }
            output.Append(filter.Finish());
            Assert.Equal(expected, output.ToString());
            Assert.Equal(expected.Length < text.Length, filter.Stopped);
        }
    }

    [Fact]
    public void HeldBackText_IsOnlyAPossibleStopPrefix()
    {
        var filter = new StopSequenceFilter(["</end>"]);
        Assert.Equal("abc", filter.Push("abc</e"));
        Assert.Equal("</ex", filter.Push("x"));
        Assert.Equal("", filter.Push("</en"));
        Assert.Equal("</en", filter.Finish());
        Assert.Throws<ArgumentException>(() => new StopSequenceFilter(["ok", ""]));
    }
}
