using System.Diagnostics;
using System.Text;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.RL.Tokenizers;

/// <summary>
/// A megabyte of one repeated character or of text without spaces is one huge pre-tokenized word: BPE work must
/// grow as n log n (the merge queue), not n². Checked with the model's work counter (exact) and, loosely, wall time
/// (the regex pre-tokenizers have no counter): the machine running the tests may be shared and loaded, so the time
/// bound only catches what grows much faster than ×4 from 256 KB to 1 MB.
/// </summary>
public class LinearTimeTests
{
    private static string NoSpaces(int length, int seed)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-*/=()[]{};:,._中文字😀";
        var rng = new Random(seed);
        var sb = new StringBuilder(length + 2);
        while (sb.Length < length) sb.Append(alphabet[rng.Next(alphabet.Length)]);
        // keep surrogate pairs whole
        if (char.IsHighSurrogate(sb[^1])) sb.Length--;
        return sb.ToString();
    }

    public static TheoryData<string> Inputs => ["a", " ", "nospace"];

    [Theory]
    [MemberData(nameof(Inputs))]
    public void OneMegabyte_EncodesInNearLinearWork(string kind)
    {
        // A private instance: its work counter sees only this test.
        var dir = RealTokenizers.Unpack(RealTokenizers.DeepseekV3);
        HfTokenizer tok;
        try { tok = (HfTokenizer)TokenizerLoader.Load(dir); }
        finally { Directory.Delete(dir, true); }
        var model = tok.ByteLevel!.Model;
        string Make(int n) => kind == "nospace" ? NoSpaces(n, 7) : new string(kind[0], n) + "x";

        (long Work, double Seconds, int Tokens) Run(string text)
        {
            long before = model.WorkCounter;
            var sw = Stopwatch.StartNew();
            int count = tok.Encode(text).Length;
            return (model.WorkCounter - before, sw.Elapsed.TotalSeconds, count);
        }

        Run(Make(4096)); // JIT and regex warm-up
        var small = Run(Make(256 * 1024));
        var large = Run(Make(1024 * 1024));
        Assert.True(large.Tokens > small.Tokens * 3, $"{kind}: {small.Tokens} then {large.Tokens} tokens");
        // n log n from 256 K to 1 M characters: × 4.44; quadratic would be × 16.
        Assert.True(large.Work <= small.Work * 4.6 + 1000, $"{kind}: BPE work {small.Work} → {large.Work}");
        Assert.True(large.Seconds < small.Seconds * 16 + 5, $"{kind}: {small.Seconds:F3} s → {large.Seconds:F3} s");
    }
}
