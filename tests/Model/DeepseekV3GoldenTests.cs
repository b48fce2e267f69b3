using NativeReasoner.Cli;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The golden case: logits of the official DeepSeek-V3 inference code (fp32) for a tiny YaRN model
/// without q compression (tests/fixtures/deepseek-v3-tiny-yarn, copied from the shared golden data).
/// </summary>
public sealed class DeepseekV3GoldenTests(ITestOutputHelper output)
{
    private static readonly string Dir = Fixture("deepseek-v3-tiny-yarn");
    private static readonly string Golden = Path.Combine(Dir, "golden.safetensors");

    [Fact]
    public void FullLogitsMatchGolden()
    {
        var (ids, b, t) = ReadIds(Golden, "input_ids");
        using var model = DeepseekV3Checkpoint.Load(Dir);
        var logits = LogitsRunner.Run(model, ids, b, t);
        double err = RelError(logits, ReadF32(Golden, "logits"));
        output.WriteLine($"full logits: max relative error {err:E3}");
        Assert.True(err <= 1e-4, $"relative error {err:E3}");
    }

    [Fact]
    public void DecodeLogitsThroughCompressedCacheMatchGolden()
    {
        var (ids, b, t) = ReadIds(Golden, "input_ids");
        using var model = DeepseekV3Checkpoint.Load(Dir);
        var logits = LogitsRunner.Run(model, ids, b, t, decodeFrom: 33);
        double err = RelError(logits, ReadF32(Golden, "decode_logits"));
        output.WriteLine($"decode logits (--decode-from 33): max relative error {err:E3}");
        Assert.True(err <= 1e-4, $"relative error {err:E3}");
    }

    [Fact]
    public void LogitsCommandWritesGoldenLogits()
    {
        var dir = TempDir();
        try
        {
            string full = Path.Combine(dir, "full.safetensors"), dec = Path.Combine(dir, "decode.safetensors");
            int rc = Program.BuildRoot().Parse(["logits", "--model", Dir, "--input", Golden, "--out", full]).Invoke();
            Assert.Equal(0, rc);
            rc = Program.BuildRoot().Parse(["logits", "--model", Dir, "--input", Golden, "--out", dec, "--decode-from", "33", "--device", "cpu"]).Invoke();
            Assert.Equal(0, rc);
            using (var f = NativeReasoner.IO.SafetensorsFile.Open(full))
                Assert.Equal([2L, 40, 80], f.GetEntry("logits").Shape);
            using (var f = NativeReasoner.IO.SafetensorsFile.Open(dec))
                Assert.Equal([2L, 7, 80], f.GetEntry("logits").Shape);
            double e1 = RelError(ReadF32(full, "logits"), ReadF32(Golden, "logits"));
            double e2 = RelError(ReadF32(dec, "logits"), ReadF32(Golden, "decode_logits"));
            output.WriteLine($"nr logits: full {e1:E3}, decode {e2:E3}");
            Assert.True(e1 <= 1e-4 && e2 <= 1e-4);

            // The scalar reference backend gives the same answer.
            string refOut = Path.Combine(dir, "reference.safetensors");
            rc = Program.BuildRoot().Parse(["logits", "--model", Dir, "--input", Golden, "--out", refOut, "--decode-from", "33", "--device", "reference"]).Invoke();
            Assert.Equal(0, rc);
            double e3 = RelError(ReadF32(refOut, "logits"), ReadF32(Golden, "decode_logits"));
            output.WriteLine($"nr logits --device reference: decode {e3:E3}");
            Assert.True(e3 <= 1e-4);
        }
        finally { Directory.Delete(dir, true); }
    }
}
