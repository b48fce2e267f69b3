extern alias gpubench;

using System.Text.Json;
using gpubench::NativeReasoner.Perf.Gpu;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Model;
using NativeReasoner.Tests.Cuda;
using Xunit;

namespace NativeReasoner.Tests.Perf;

/// <summary>
/// `nr-gpubench --smoke --json`: every line parses, every op of the catalogue has a row, the rows that ran carry
/// a positive median, at least 10 runs and their rate, and the rows that cannot run say why instead of ending the
/// run. The numbers themselves are not checked (a smoke run on a shared CPU times nothing meaningful).
/// </summary>
public sealed class GpuBenchTests
{
    private static readonly string[] AllOps =
    [
        "copy", "gemm_fp32", "gemm_bf16", "softmax", "rmsnorm", "silu_mul", "adamw",
        "attention_bf16_fwd", "attention_bf16_bwd", "attention_bf16_fwd_bwd", "attention_fp32_fwd", "attention_fp32_bwd",
        "mla_decode", "moe_fwd", "moe_fwd_bwd", "train_step", "train_step_dense", "decode_deepseek_v3", "decode_dense",
    ];

    private static (int Rc, List<JsonElement> Lines, string Err) Run(string device, params string[] only)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var args = new List<string> { "--device", device, "--smoke", "--json" };
        foreach (var name in only) args.AddRange(["--only", name]);
        int rc = GpuBenchProgram.Run(args, o, e);
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        return (rc, lines, e.ToString());
    }

    private static void AssertMeasured(JsonElement r)
    {
        string op = r.GetProperty("op").GetString()!;
        Assert.True(r.GetProperty("ms").GetDouble() > 0, op);
        // The decode rows time whole generation runs (one per round; smoke sizes run one round).
        Assert.True(r.GetProperty("reps").GetInt32() >= (op.StartsWith("decode_") ? 1 : 10), op);
        Assert.True(r.GetProperty("min_ms").GetDouble() <= r.GetProperty("ms").GetDouble(), op);
        bool hasRate = false;
        foreach (var name in new[] { "tflops", "gbps", "tokens_per_s" })
            if (r.TryGetProperty(name, out var v))
            {
                Assert.True(v.GetDouble() > 0 && double.IsFinite(v.GetDouble()), $"{op} {name}");
                hasRate = true;
            }
        Assert.True(hasRate, $"{op} has no rate");
    }

    [Fact]
    public void SmokeRunOnCpuReportsEveryOp()
    {
        var (rc, lines, err) = Run("cpu");
        Assert.True(rc == 0, err);
        var device = lines[0];
        Assert.Equal("device", device.GetProperty("op").GetString());
        Assert.True(device.GetProperty("smoke").GetBoolean());
        Assert.Equal(JsonValueKind.Null, device.GetProperty("peak_bf16_tflops").ValueKind); // a CPU is not in the peak table

        // One row per op, except decode: one per batch size (smoke: 1 and 3).
        var all = lines.Skip(1).ToList();
        var rows = all.GroupBy(l => l.GetProperty("op").GetString()!).ToDictionary(g => g.Key, g => g.First());
        Assert.Equal(AllOps.Order(), rows.Keys.Order());
        foreach (var family in new[] { "decode_deepseek_v3", "decode_dense" })
            Assert.Equal([1, 3], all.Where(l => l.GetProperty("op").GetString() == family)
                .Select(l => l.GetProperty("shape")[0].GetInt32()).ToArray());
        foreach (var r in all)
        {
            string op = r.GetProperty("op").GetString()!;
            Assert.Equal("ours", r.GetProperty("impl").GetString());
            Assert.Equal("cpu", r.GetProperty("device").GetString());
            Assert.True(r.GetProperty("shape").GetArrayLength() > 0, op);
            string status = r.GetProperty("status").GetString()!;
            if (op.StartsWith("attention_bf16") || op == "mla_decode")
            {
                // CUDA-only methods: reported, not crashed on.
                Assert.Equal("unsupported", status);
                Assert.Contains("CUDA-only", r.GetProperty("error").GetString());
                continue;
            }
            Assert.True(status == "ok", $"{op}: {status} {(r.TryGetProperty("error", out var e) ? e.GetString() : "")}");
            AssertMeasured(r);
        }
        foreach (var op in new[] { "softmax", "rmsnorm", "silu_mul", "adamw" })
            Assert.True(rows[op].GetProperty("of_copy").GetDouble() > 0, op);
        // The JSON carries gbps rounded to 4 decimals: compare within a tolerance (rounding both sides to 3 places
        // can land them on either side of a half).
        Assert.Equal(2.0 * (1 << 20) / (rows["copy"].GetProperty("ms").GetDouble() * 1e6),
            rows["copy"].GetProperty("gbps").GetDouble(), 1e-3);
        var train = rows["train_step"];
        Assert.Equal("unknown", train.GetProperty("mfu").GetString());
        Assert.True(train.GetProperty("params_active").GetInt64() < train.GetProperty("params_total").GetInt64());
        Assert.True(float.IsFinite((float)train.GetProperty("first_loss").GetDouble()));
        var dense = rows["train_step_dense"];
        // Tied embeddings: the table is the head (a matmul), so every parameter is active.
        Assert.Equal(dense.GetProperty("params_total").GetInt64(), dense.GetProperty("params_active").GetInt64());
        Assert.True(float.IsFinite((float)dense.GetProperty("first_loss").GetDouble()));
        Assert.Equal("fp32", dense.GetProperty("dtype").GetString());
    }

    [Fact]
    public void Bf16RunsTheModelBenchmarksUnderAutocastAndSaysSo()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = GpuBenchProgram.Run(["--device", "cpu", "--smoke", "--json", "--bf16", "--only", "train_dense"], o, e);
        Assert.True(rc == 0, e.ToString());
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.True(lines[0].GetProperty("bf16_autocast").GetBoolean());
        var row = Assert.Single(lines.Skip(1));
        Assert.Equal("train_step_dense", row.GetProperty("op").GetString());
        Assert.Equal("bf16-autocast", row.GetProperty("dtype").GetString());
        AssertMeasured(row);
    }

    [Fact]
    public void CompileRefusesADeviceThatIsNotCuda()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, GpuBenchProgram.Run(["--device", "cpu", "--compile"], o, e));
        Assert.Contains("not a CUDA device", e.ToString());
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void CompileReportsEveryKernelFile()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = GpuBenchProgram.Run(["--device", "cuda:emu", "--compile", "--json"], o, e);
        Assert.True(rc == 0, e.ToString());
        var rows = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        var files = rows.Select(r => r.GetProperty("file").GetString()!).ToHashSet();
        // Every .cu of kernels/cuda is embedded and compiled (the .cuh headers are included by them).
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "NativeReasoner.sln"))) root = Path.GetDirectoryName(root)!;
        var sources = Directory.GetFiles(Path.Combine(root, "kernels", "cuda"), "*.cu")
            .Select(Path.GetFileName).ToHashSet();
        Assert.Equal(sources.Order(), files.Order());
        foreach (var r in rows)
        {
            Assert.Equal("nvrtc_compile", r.GetProperty("op").GetString());
            Assert.Equal("ok", r.GetProperty("status").GetString());
            Assert.True(r.GetProperty("ms").GetDouble() >= 0);
        }
    }

    [Fact]
    public void OnlyPicksByPrefixAndRefusesUnknownNames()
    {
        var (rc, lines, _) = Run("cpu", "gemm");
        Assert.Equal(0, rc);
        Assert.Equal(["gemm_fp32", "gemm_bf16"], lines.Skip(1).Select(l => l.GetProperty("op").GetString()!).ToArray());

        (rc, lines, var err) = Run("cpu", "no_such_bench");
        Assert.Equal(2, rc);
        Assert.Empty(lines);
        Assert.Contains("no_such_bench", err);
        Assert.Contains("mla_decode", err); // lists the known names
    }

    [Fact]
    public void BadArgumentsAreNamedAndTheListNamesEveryBenchmark()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, GpuBenchProgram.Run(["--devcie", "cpu"], o, e));
        Assert.Contains("'--devcie'", e.ToString());
        Assert.Equal(2, GpuBenchProgram.Run(["--device"], o, e));
        Assert.Contains("--device needs a value", e.ToString());
        Assert.Equal(2, GpuBenchProgram.Run(["--device", "nosuchdevice", "--smoke"], o, e));

        o = new StringWriter();
        Assert.Equal(0, GpuBenchProgram.Run(["--list"], o, e));
        var listed = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 2)[0]).ToHashSet();
        foreach (var op in new[] { "copy", "gemm", "mla_decode", "train" })
            Assert.Contains(listed, name => op.StartsWith(name, StringComparison.Ordinal) || name.StartsWith(op, StringComparison.Ordinal));
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void SmokeRunOnTheEmulatorTimesWithEventsAndReportsMissingKernels()
    {
        var (rc, lines, err) = Run("cuda:emu", "copy", "gemm_fp32", "softmax", "mla_decode");
        Assert.True(rc == 0, err);
        var rows = lines.Skip(1).ToDictionary(l => l.GetProperty("op").GetString()!);
        Assert.Equal(["copy", "gemm_fp32", "mla_decode", "softmax"], rows.Keys.Order().ToArray());
        AssertMeasured(rows["copy"]);
        Assert.Equal("cuda_event", rows["copy"].GetProperty("timer").GetString());
        // Kernels still being written report themselves; once written they are measured like the copy.
        foreach (var op in new[] { "gemm_fp32", "softmax", "mla_decode" })
        {
            string status = rows[op].GetProperty("status").GetString()!;
            Assert.True(status is "ok" or "not_implemented", $"{op}: {status}");
            if (status == "ok") AssertMeasured(rows[op]);
            else Assert.Contains("not written yet", rows[op].GetProperty("error").GetString());
        }
    }

    [Fact]
    public void PeakTableKnowsHopperAndNothingElse()
    {
        Assert.Equal((989.0, 67.0), (GpuBenchPeaks.For("NVIDIA H100 80GB HBM3")!.Value.Bf16, GpuBenchPeaks.For("NVIDIA H100 80GB HBM3")!.Value.Fp32));
        Assert.Equal(989.0, GpuBenchPeaks.For("NVIDIA H200")!.Value.Bf16);
        Assert.Equal(756.0, GpuBenchPeaks.For("NVIDIA H100 PCIe")!.Value.Bf16);
        Assert.Null(GpuBenchPeaks.For("Tesla T4"));
        Assert.Null(GpuBenchPeaks.For("cpu"));
    }

    [Fact]
    public void ActiveParametersLeaveOutTheEmbeddingAndTheUnusedExperts()
    {
        var c = GpuBenchTraining.ConfigSmoke;
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        var (total, active) = GpuBenchTraining.CountParameters(model);
        Assert.Equal(model.ParameterCount, total);
        int moeLayers = Enumerable.Range(0, c.NumHiddenLayers).Count(c.IsMoeLayer);
        long unused = (long)moeLayers * (c.NRoutedExperts - c.NumExpertsPerTok) * 3 * c.HiddenSize * c.MoeIntermediateSize;
        Assert.Equal(total - (long)c.VocabSize * c.HiddenSize - unused, active);
    }
}
