using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.Tests.RL.Tokenizers;
using Xunit;

namespace NativeReasoner.Tests.Cli;

/// <summary>`nr tokenize`: ids, pieces and per-token text, as a table or JSON; a bad directory is one clear
/// line.</summary>
public class TokenizeCommandTests
{
    private static (int Rc, string Out, string Err) Run(string dir, string text, bool addSpecial = false,
        bool json = false)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = TokenizeCommand.Run(dir, text, addSpecial, parseSpecialTokens: true, json, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public void Json_HasIdsPiecesAndTexts_WithBosWhenAsked()
    {
        var dir = RealTokenizers.Unpack(RealTokenizers.DeepseekV3);
        try
        {
            var (rc, output, err) = Run(dir, "a😀b <think>", addSpecial: true, json: true);
            Assert.True(rc == 0, err);
            var root = JsonDocument.Parse(output).RootElement;
            var ids = root.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
            Assert.Equal(0, ids[0]); // BOS
            Assert.Equal([67, 28927, 225, 68], ids[1..5]);
            Assert.Equal(ids.Length, root.GetProperty("count").GetInt32());
            Assert.Equal("a", root.GetProperty("pieces")[1].GetString());
            Assert.Equal(ids.Length, root.GetProperty("pieces").GetArrayLength());
            Assert.Equal("a", root.GetProperty("texts")[1].GetString());
            Assert.Equal("b", root.GetProperty("texts")[4].GetString());
            var table = Run(dir, "hi\n").Out;
            Assert.Matches(@"^\d+ tokens", table);
            Assert.Contains("\\n", table);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MissingDirectory_IsOneErrorLine()
    {
        var (rc, _, err) = Run(Path.Combine(Path.GetTempPath(), "nr-no-such-dir-" + Guid.NewGuid().ToString("N")), "x");
        Assert.Equal(1, rc);
        Assert.StartsWith("nr tokenize:", err);
        Assert.Contains("does not exist", err);
    }
}
