using System.Runtime.InteropServices;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// The dense families (and qwen3_moe) through the shared <see cref="HfCheckpoint"/> loader: a bf16 checkpoint loaded
/// for inference keeps its matrices bf16 (vectors and the MoE router float32) and gives, under bf16 autocast, the
/// same logits and cached-decode logits bit for bit as the float32 model holding the same widened values; an f16
/// model equals its widened model exactly; saving keeps the stored type and round-trips.
/// </summary>
public sealed class DenseStoredPrecisionTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    public static TheoryData<string, string> Families => new()
    {
        { "qwen2-tiny-ref", "qwen2" },
        { "llama-tiny-ref", "llama" },
        { "qwen3-tiny-ref", "qwen3" },
        { "qwen3-moe-tiny-ref", "qwen3_moe" },
    };

    private static readonly long[] Ids = [5, 9, 1, 33, 2, 60, 7, 7, 12, 40, 3, 8, 0, 21, 11, 50];

    private static float[] Logits(ICausalLM m, int? decodeFrom = null) => LogitsRunner.Run(m, Ids, 2, 8, decodeFrom);

    /// <summary>The fixture's float32 checkpoint with every tensor rounded to <paramref name="dtype"/>.</summary>
    private string Narrowed(string fixture, DType dtype)
    {
        string source = Fixture(fixture), dir = Path.Combine(_dir, fixture + "-" + dtype);
        var tensors = new List<SafetensorsTensor>();
        using (var f = SafetensorsFile.Open(Path.Combine(source, "model.safetensors")))
            foreach (var e in f.Entries)
            {
                float[] v = f.ReadFloat32(e.Name);
                ushort[] bits = dtype == DType.BFloat16
                    ? v.Select(Fp8BlockDequant.RoundToBFloat16).ToArray()
                    : v.Select(x => BitConverter.HalfToUInt16Bits((Half)x)).ToArray();
                byte[] bytes = MemoryMarshal.AsBytes(bits.AsSpan()).ToArray();
                tensors.Add(new SafetensorsTensor(e.Name, dtype, e.Shape, bytes));
            }
        SafetensorsCheckpoint.Write(dir, tensors);
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(dir, "config.json"), true);
        return dir;
    }

    private static double MaxRelativeError(float[] actual, float[] expected)
    {
        double scale = expected.Max(v => Math.Abs((double)v));
        return actual.Zip(expected, (a, e) => Math.Abs((double)a - e)).Max() / scale;
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Bf16Checkpoint_KeepsBf16_AndMatchesTheUpcastModelBitForBit(string fixture, string modelType)
    {
        string dir = Narrowed(fixture, DType.BFloat16);
        using var stored = CausalLMRegistry.Load(dir, null, CheckpointLoadOptions.Inference, out var report);
        using var upcast = CausalLMRegistry.Load(dir, null, CheckpointLoadOptions.Training, out var upcastReport);
        using var original = CausalLMRegistry.Load(Fixture(fixture));
        Assert.Equal(modelType, stored.Config.ModelType);

        var weights = ((DenseForCausalLM)stored).StateDict();
        Assert.Equal(DType.BFloat16, weights["model.embed_tokens.weight"].DType);
        Assert.Equal(DType.BFloat16, weights["model.layers.0.self_attn.q_proj.weight"].DType);
        Assert.Equal(DType.BFloat16, weights["model.layers.1.self_attn.o_proj.weight"].DType);
        Assert.Equal(DType.Float32, weights["model.layers.0.input_layernorm.weight"].DType);   // vectors stay fp32
        Assert.Equal(DType.Float32, weights["model.norm.weight"].DType);
        if (weights.TryGetValue("model.layers.0.self_attn.q_proj.bias", out var bias))
            Assert.Equal(DType.Float32, bias.DType);
        if (weights.TryGetValue("model.layers.1.mlp.gate.weight", out var router))
            Assert.Equal(DType.Float32, router.DType);                                       // router stays fp32
        if (weights.TryGetValue("lm_head.weight", out var head)) Assert.Equal(DType.BFloat16, head.DType);
        Assert.All(stored.Parameters(), p => Assert.False(p.RequiresGrad));
        Assert.All(((DenseForCausalLM)upcast).StateDict().Values, t => Assert.Equal(DType.Float32, t.DType));
        Assert.True(report.WeightBytes < 0.6 * upcastReport.WeightBytes,
            $"bf16 weights take {report.WeightBytes} bytes, float32 {upcastReport.WeightBytes}");
        Assert.Contains(report.Notes, n => n.Contains("BFloat16 weight matrices as stored"));
        Assert.DoesNotContain(report.Notes, n => n.Contains("float32 only") || n.Contains("held as float32"));
        Assert.True(report.ResidentBytes > 0);

        float[] full, decode;
        using (Autocast.Bf16())
        {
            full = Logits(stored);
            decode = Logits(stored, 3);
            Assert.Equal(Logits(upcast), full);
            Assert.Equal(Logits(upcast, 3), decode);
        }
        Assert.All(full, v => Assert.True(float.IsFinite(v)));
        Assert.All(decode, v => Assert.True(float.IsFinite(v)));

        double plainError = MaxRelativeError(Logits(stored), Logits(original));
        double autocastError = MaxRelativeError(full, Logits(original));
        output.WriteLine($"{modelType}: max |Δlogit| / max |logit| against the float32 original: bf16-stored " +
            $"{plainError:E2}, bf16-stored under autocast {autocastError:E2}");
        Assert.True(autocastError < 5e-2, $"{modelType}: bf16 model under autocast drifts {autocastError:E2}");
        Assert.True(plainError < 5e-2, $"{modelType}: bf16 model drifts {plainError:E2}");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void F16Checkpoint_KeepsF16_SavesAsStored_AndRoundTrips(string fixture, string modelType)
    {
        string dir = Narrowed(fixture, DType.Float16);
        using var stored = CausalLMRegistry.Load(dir, null, CheckpointLoadOptions.Inference, out _);
        using var upcast = CausalLMRegistry.Load(dir);
        const string Matrix = "model.layers.0.mlp.down_proj.weight";
        string matrix = ((DenseForCausalLM)stored).StateDict().ContainsKey(Matrix)
            ? Matrix : "model.layers.0.self_attn.o_proj.weight";
        Assert.Equal(DType.Float16, ((DenseForCausalLM)stored).StateDict()[matrix].DType);
        Assert.Equal(Logits(upcast), Logits(stored));
        Assert.Equal(Logits(upcast, 5), Logits(stored, 5));

        string again = Path.Combine(_dir, modelType + "-again");
        ((DenseForCausalLM)stored).Save(again);
        using (var ckpt = SafetensorsCheckpoint.Open(again))
        {
            Assert.Equal(DType.Float16, ckpt.GetEntry(matrix).DType);
            Assert.Equal(DType.Float32, ckpt.GetEntry("model.norm.weight").DType);
        }
        using var reloaded = CausalLMRegistry.Load(again, null, CheckpointLoadOptions.Inference, out _);
        Assert.Equal(modelType, reloaded.Config.ModelType);
        Assert.Equal(Logits(stored), Logits(reloaded));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Float32Model_SavedShardedAndReloaded_IsTheSameModel(string fixture, string modelType)
    {
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        string again = Path.Combine(_dir, modelType + "-f32");
        var dense = (DenseForCausalLM)model;
        HfCheckpoint.Save(dense, again, dense.Config.ToJson(), maxShardBytes: 8_000);
        Assert.True(File.Exists(Path.Combine(again, "model.safetensors.index.json")), "expected shards");
        Assert.True(File.Exists(Path.Combine(again, "config.json")));
        using var reloaded = CausalLMRegistry.Load(again);
        Assert.Equal(Logits(model), Logits(reloaded));
        Assert.All(((DenseForCausalLM)reloaded).StateDict().Values, t => Assert.Equal(DType.Float32, t.DType));
    }
}
