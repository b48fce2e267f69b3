using System.Text.Json;
using NativeReasoner.Cli;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Kernels.Verification;
using NativeReasoner.Tests.Cuda;
using Xunit;

namespace NativeReasoner.Tests.Cli;

/// <summary>
/// `nr check`: the conformance suite on a named device, its output and its exit code. The exit code is what the GPU
/// check script trusts, so every way of not verifying anything (a failing check, a missing kernel, a filter that
/// matches nothing, a device that does not open) must be non-zero.
/// </summary>
public sealed unsafe class CheckCommandTests
{
    private static (int Rc, string Out, string Err) Run(string device, string[] filters, bool json = true)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = CheckCommand.Run(device, filters, json, seed: 0, listOnly: false, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    private static List<JsonElement> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public void PassesOnCpuWithOneJsonLinePerCheckAndASummary()
    {
        var (rc, output, err) = Run("cpu", ["memory/"]);
        Assert.True(rc == 0, err + output);
        var lines = Lines(output);
        int expected = KernelChecks.All.Count(c => c.Name.Contains("memory/"));
        Assert.True(expected > 0);
        var checks = lines.Where(l => l.TryGetProperty("check", out _)).ToList();
        Assert.Equal(expected, checks.Count);
        Assert.All(checks, c =>
        {
            Assert.Equal("pass", c.GetProperty("status").GetString());
            Assert.True(c.GetProperty("ms").GetDouble() >= 0);
        });
        var summary = lines.Last();
        Assert.True(summary.GetProperty("ok").GetBoolean());
        Assert.Equal(expected, summary.GetProperty("passed").GetInt32());
        Assert.Equal(0, summary.GetProperty("failed").GetInt32());
    }

    [Fact]
    public void ABackendWithoutAnOptionalOpReportsUnsupportedFallbackNotASilentPass()
    {
        // ILGPU has no quantised matmul kernel: the checks run the host fallback and say so.
        var (rc, output, err) = Run("ilgpu", ["quantized-matmul/q6_k/37x70x256"], json: false);
        Assert.True(rc == 0, err + output);
        Assert.Contains("unsupported (fallback)", output);
        Assert.Contains("QuantizedMatMul runs on the CPU fallback", output);
        Assert.Contains("(1 of them through a fallback)", output);
        var (rcJson, json, errJson) = Run("ilgpu", ["quantized-matmul/q6_k/37x70x256"]);
        Assert.True(rcJson == 0, errJson + json);
        var line = Lines(json).First(l => l.TryGetProperty("check", out _));
        Assert.Equal("unsupported_fallback", line.GetProperty("status").GetString());
        Assert.Equal("QuantizedMatMul", line.GetProperty("fallback").GetString());
        // The CPU backend has the op: a plain pass.
        var (_, cpu, _) = Run("cpu", ["quantized-matmul/q6_k/37x70x256"], json: false);
        Assert.DoesNotContain("fallback]", cpu);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void PassesOnTheCudaEmulator()
    {
        var (rc, output, err) = Run("cuda:emu", ["memory/fill", "memory/roundtrip/37"], json: false);
        Assert.True(rc == 0, err + output);
        Assert.Contains("memory/fill/7", output);
        Assert.Contains("memory/roundtrip/37", output);
        Assert.DoesNotContain("memory/roundtrip/4099", output);
        Assert.Contains(" 0 failed", output);
    }

    [Fact]
    public void AFilterThatMatchesNothingIsAFailure()
    {
        var (rc, output, err) = Run("cpu", ["no-such-check-anywhere"]);
        Assert.Equal(1, rc);
        Assert.Contains("nothing was verified", err);
        Assert.False(Lines(output).Single().GetProperty("ok").GetBoolean());
        // Through the command line as well.
        Assert.Equal(1, Program.BuildRoot().Parse(["check", "--device", "cpu", "--filter", "no-such-check-anywhere"]).Invoke());
    }

    [Fact]
    public void AnUnknownDeviceIsExitCode2()
    {
        var (rc, _, err) = Run("no-such-device", []);
        Assert.Equal(2, rc);
        Assert.Contains("no-such-device", err);
    }

    [Fact]
    public void AFailingCheckAndAMissingKernelGiveExitCode1()
    {
        var wrong = new KernelCheck("forced/wrong-value", ctx =>
        {
            float* y = ctx.Garbage<float>(4);
            ctx.K.Fill(y, 4, 1f);
            ctx.Close(ctx.Down(y, 4), [1f, 1f, 1f, 2f], 1e-6, "fill compared with a wrong expectation");
        });
        var missing = new KernelCheck("forced/missing-kernel", _ => throw new NotImplementedException("CudaKernels.Nothing: kernel not written yet"));
        var fine = new KernelCheck("forced/fine", ctx => ctx.Require(true, "always"));

        var o = new StringWriter();
        Assert.Equal(1, CheckCommand.RunChecks(Device.Cpu, [fine, wrong], json: true, seed: 0, o));
        var lines = Lines(o.ToString());
        Assert.Equal("pass", lines[0].GetProperty("status").GetString());
        Assert.Equal("fail", lines[1].GetProperty("status").GetString());
        Assert.Contains("relative error", lines[1].GetProperty("failures")[0].GetString());
        Assert.Equal(1, lines[2].GetProperty("failed").GetInt32());

        o = new StringWriter();
        Assert.Equal(1, CheckCommand.RunChecks(Device.Cpu, [fine, missing], json: false, seed: 0, o));
        Assert.Contains("MISSING", o.ToString());
        Assert.Contains("1 not implemented", o.ToString());

        o = new StringWriter();
        Assert.Equal(0, CheckCommand.RunChecks(Device.Cpu, [fine], json: false, seed: 0, o));
        Assert.Equal(1, CheckCommand.RunChecks(Device.Cpu, [], json: false, seed: 0, o));
    }

    [Fact]
    public void ClassifiesOnlyANotImplementedThrowAsMissing()
    {
        Assert.Equal(CheckCommand.Outcome.Missing,
            CheckCommand.Classify(new KernelCheckResult("a", false, double.PositiveInfinity, ["threw NotImplementedException: x"], 1)));
        Assert.Equal(CheckCommand.Outcome.Fail,
            CheckCommand.Classify(new KernelCheckResult("a", false, double.PositiveInfinity, ["threw CudaException: x"], 1)));
        Assert.Equal(CheckCommand.Outcome.Fail,
            CheckCommand.Classify(new KernelCheckResult("a", false, 1, ["threw NotImplementedException: x", "y: relative error"], 1)));
        Assert.Equal(CheckCommand.Outcome.Pass, CheckCommand.Classify(new KernelCheckResult("a", true, 0, [], 1)));
        Assert.Equal(CheckCommand.Outcome.Fallback,
            CheckCommand.Classify(new KernelCheckResult("a", true, 0, [], 1, "GqaDecodeAttention")));
        Assert.Equal(CheckCommand.Outcome.Fail,
            CheckCommand.Classify(
                new KernelCheckResult("a", false, 1, ["o: relative error"], 1, "GqaDecodeAttention")));
    }
}
