using NativeReasoner.Cli;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The tiny FP8 DeepSeek-V3 checkpoint written by tests/reference/fp8_dequant.py (two shards, scales across shards,
/// BF16 non-quantised weights, one multi-token-prediction layer) against the same model dequantised to F32 by the
/// Python port of the official weight_dequant.
/// </summary>
public sealed class Fp8CheckpointTests : IDisposable
{
    private static readonly string Fp8Dir = Fixture("deepseek-v3-fp8");
    private static readonly string DequantDir = Fixture("deepseek-v3-fp8-dequant");
    private readonly string _dir = TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public unsafe void Fp8Checkpoint_LoadsToTheDequantisedWeightsAndLogits()
    {
        using var fp8 = DeepseekV3Checkpoint.Load(Fp8Dir, null, CheckpointLoadOptions.Training, out var report);
        using var reference = DeepseekV3Checkpoint.Load(DequantDir);
        var a = fp8.StateDict();
        var b = reference.StateDict();
        Assert.Equal(b.Keys.OrderBy(k => k), a.Keys.OrderBy(k => k));
        foreach (var (name, t) in b)
        {
            var x = new ReadOnlySpan<float>(a[name].Data, checked((int)t.Numel));
            var y = new ReadOnlySpan<float>(t.Data, checked((int)t.Numel));
            for (int i = 0; i < x.Length; i++)
                Assert.True(BitConverter.SingleToUInt32Bits(x[i]) == BitConverter.SingleToUInt32Bits(y[i]),
                    $"{name}[{i}]: {x[i]:R} vs {y[i]:R}");
        }
        Assert.Contains(report.Notes, n => n.Contains("multi-token-prediction layer model.layers.2.*"));
        Assert.Contains(report.Notes, n => n.Contains("FP8") && n.Contains("128×128"));
        Assert.True(report.ResidentBytes > 0 && report.PeakResidentBytes >= report.ResidentBytes);

        using var scope = new TensorScope();
        var ids = Tensor.FromArray(new long[] { 3, 17, 5, 60, 2, 9, 41, 33 }, [2, 4]);
        var la = fp8.Forward(ids).ToArray();
        var lb = reference.Forward(ids).ToArray();
        Assert.All(la, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(lb, la);
    }

    [Theory]
    [InlineData("{\"quant_method\": \"gptq\"}", "quant_method 'gptq' is not supported")]
    [InlineData("{\"quant_method\": \"fp8\", \"fmt\": \"e5m2\"}", "fmt 'e5m2' is not supported")]
    [InlineData("{\"quant_method\": \"fp8\", \"activation_scheme\": \"static\"}", "activation_scheme 'static'")]
    [InlineData("{\"quant_method\": \"fp8\", \"weight_block_size\": [128]}", "weight_block_size must be two positive")]
    public void UnsupportedQuantization_IsAClearError(string quant, string expected)
    {
        CopyFp8Dir();
        string cfg = File.ReadAllText(Path.Combine(_dir, "config.json"));
        int at = cfg.IndexOf("\"quantization_config\"", StringComparison.Ordinal);
        int end = cfg.IndexOf('}', at);
        File.WriteAllText(Path.Combine(_dir, "config.json"),
            cfg[..at] + "\"quantization_config\": " + quant + cfg[(end + 1)..]);
        var e = Assert.Throws<ModelConfigException>(() => DeepseekV3Checkpoint.Load(_dir).Dispose());
        Assert.Contains(expected, e.Message);
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void Fp8WithoutQuantizationConfig_IsAClearError()
    {
        CopyFp8Dir();
        string cfg = File.ReadAllText(Path.Combine(_dir, "config.json"));
        int at = cfg.IndexOf("\"quantization_config\"", StringComparison.Ordinal);
        int end = cfg.IndexOf('}', at);
        File.WriteAllText(Path.Combine(_dir, "config.json"),
            cfg[..at] + "\"quantization_config\": null" + cfg[(end + 1)..]);
        var e = Assert.Throws<CheckpointMismatchException>(() => DeepseekV3Checkpoint.Load(_dir).Dispose());
        Assert.Contains("is F8_E4M3 but config.json has no quantization_config", e.Message);
    }

    [Fact]
    public void MissingScale_IsNamed()
    {
        CopyFp8Dir();
        string index = Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName);
        const string scale = "model.layers.0.mlp.down_proj.weight_scale_inv";
        File.WriteAllLines(index, File.ReadAllLines(index).Where(l => !l.Contains($"\"{scale}\"")));
        var e = Assert.Throws<SafetensorsException>(() => DeepseekV3Checkpoint.Load(_dir).Dispose());
        Assert.Contains($"lacks '{scale}'", e.Message);
    }

    [Fact]
    public void LogitsCommand_RunsTheFp8CheckpointAsStoredOrInFloat32()
    {
        long[] ids = [3, 17, 5, 60, 2, 9, 41, 33];
        string input = Path.Combine(_dir, "ids.safetensors"), stored = Path.Combine(_dir, "stored.safetensors");
        string wide = Path.Combine(_dir, "fp32.safetensors");
        SafetensorsWriter.Write(input,
            [new SafetensorsTensor("input_ids", DType.Int64, [2, 4],
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.AsSpan()).ToArray())]);
        int Nr(params string[] args) => Program.BuildRoot().Parse(args).Invoke();
        Assert.Equal(0, Nr("logits", "--model", Fp8Dir, "--input", input, "--out", stored));
        Assert.Equal(0, Nr("logits", "--model", Fp8Dir, "--input", input, "--out", wide, "--fp32-weights"));
        using var asStored = DeepseekV3Checkpoint.Load(Fp8Dir, null, CheckpointLoadOptions.Inference, out _);
        using var dequant = DeepseekV3Checkpoint.Load(DequantDir);
        Assert.Equal(LogitsRunner.Run(asStored, ids, 2, 4), ReadF32(stored, "logits"));
        Assert.Equal(LogitsRunner.Run(dequant, ids, 2, 4), ReadF32(wide, "logits"));
    }

    [Theory]
    [InlineData("cuda:emu")]
    [InlineData("ilgpu")]
    public void Fp8Checkpoint_LoadsOntoADevice(string deviceName)
    {
        var device = Device.Parse(deviceName);
        using var onDevice = DeepseekV3Checkpoint.Load(Fp8Dir, device, CheckpointLoadOptions.Inference, out _);
        using var onHost = DeepseekV3Checkpoint.Load(Fp8Dir, null, CheckpointLoadOptions.Inference, out _);
        using var scope = new TensorScope();
        foreach (var (name, t) in onHost.StateDict())
        {
            var d = onDevice.StateDict()[name];
            Assert.Equal(t.DType, d.DType);
            Assert.Equal(t.To(DType.Float32).ToArray(), d.To(DType.Float32).ToArray());
        }
    }

    [Fact]
    public void LoadReportText_NamesWeightsResidentMemoryAndNotes()
    {
        var report = new CheckpointLoadReport(
            ["skipped the multi-token-prediction layer model.layers.61.*"], 3L << 20, 5L << 30, 6L << 30);
        string text = LoadReportText.Format(report);
        Assert.StartsWith("weights 3.0 MiB as held, resident 5.00 GiB after load (peak 6.00 GiB)", text);
        Assert.Contains("model.layers.61.*", text);
    }

    private void CopyFp8Dir()
    {
        foreach (var f in Directory.GetFiles(Fp8Dir)) File.Copy(f, Path.Combine(_dir, Path.GetFileName(f)), true);
    }
}
