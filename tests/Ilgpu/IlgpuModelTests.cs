using NativeReasoner.Cli;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>`nr logits --device ilgpu` on the tiny DeepSeek-V3 golden model: full forward and cached decode.</summary>
public sealed class IlgpuModelTests(ITestOutputHelper output)
{
    private static readonly string Dir = Fixture("deepseek-v3-tiny-yarn");
    private static readonly string Golden = Path.Combine(Dir, "golden.safetensors");

    [Fact]
    public void LogitsOnIlgpuMatchGolden()
    {
        var dir = TempDir();
        try
        {
            string full = Path.Combine(dir, "full.safetensors"), dec = Path.Combine(dir, "decode.safetensors");
            int rc = Program.BuildRoot().Parse(["logits", "--model", Dir, "--input", Golden, "--out", full, "--device", "ilgpu"]).Invoke();
            Assert.Equal(0, rc);
            rc = Program.BuildRoot().Parse(["logits", "--model", Dir, "--input", Golden, "--out", dec, "--decode-from", "33", "--device", "ilgpu"]).Invoke();
            Assert.Equal(0, rc);
            double e1 = RelError(ReadF32(full, "logits"), ReadF32(Golden, "logits"));
            double e2 = RelError(ReadF32(dec, "logits"), ReadF32(Golden, "decode_logits"));
            output.WriteLine($"nr logits --device ilgpu ({Device.Ilgpu.Kernels.Name}): full {e1:E3}, decode {e2:E3}");
            Assert.True(e1 <= 1e-4, $"full logits: relative error {e1:E3}");
            Assert.True(e2 <= 1e-4, $"decode logits: relative error {e2:E3}");
        }
        finally { Directory.Delete(dir, true); }
    }
}
