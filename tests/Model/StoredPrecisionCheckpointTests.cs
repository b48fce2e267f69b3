using System.Runtime.InteropServices;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// 16-bit and FP8 checkpoints loaded for inference keep their weights as stored. Same math: a bf16 model equals the
/// float32 model holding the same (widened) values when both multiply in bf16 (autocast), bit for bit, for full
/// logits and cached decode; an f16 model equals its widened float32 model exactly. The error against the original
/// float32 model is reported beside.
/// </summary>
public sealed class StoredPrecisionCheckpointTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string Golden = Fixture("deepseek-v3-tiny-yarn");
    private readonly string _dir = TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>The golden float32 checkpoint, every tensor rounded to <paramref name="dtype"/>.</summary>
    private string Narrowed(DType dtype)
    {
        var tensors = new List<SafetensorsTensor>();
        using (var f = SafetensorsFile.Open(Path.Combine(Golden, "model.safetensors")))
            foreach (var e in f.Entries)
            {
                float[] v = f.ReadFloat32(e.Name);
                ushort[] bits = dtype == DType.BFloat16
                    ? v.Select(Fp8BlockDequant.RoundToBFloat16).ToArray()
                    : v.Select(x => BitConverter.HalfToUInt16Bits((Half)x)).ToArray();
                byte[] bytes = MemoryMarshal.AsBytes(bits.AsSpan()).ToArray();
                tensors.Add(new SafetensorsTensor(e.Name, dtype, e.Shape, bytes));
            }
        SafetensorsCheckpoint.Write(_dir, tensors);
        File.Copy(Path.Combine(Golden, "config.json"), Path.Combine(_dir, "config.json"), true);
        return _dir;
    }

    private static readonly long[] Ids = [5, 9, 1, 33, 2, 60, 7, 7, 12, 40, 3, 8, 0, 21, 11, 50];

    private static float[] Logits(DeepseekV3ForCausalLM m, int? decodeFrom = null) =>
        LogitsRunner.Run(m, Ids, 2, 8, decodeFrom);

    private static double MaxRelativeError(float[] actual, float[] expected)
    {
        double scale = expected.Max(v => Math.Abs((double)v));
        return actual.Zip(expected, (a, e) => Math.Abs((double)a - e)).Max() / scale;
    }

    [Fact]
    public void Bf16Checkpoint_KeepsBf16_AndMatchesTheUpcastModelBitForBit()
    {
        string dir = Narrowed(DType.BFloat16);
        using var stored = DeepseekV3Checkpoint.Load(dir, null, CheckpointLoadOptions.Inference, out var report);
        using var upcast = DeepseekV3Checkpoint.Load(dir, null, CheckpointLoadOptions.Training, out var upcastReport);
        using var original = DeepseekV3Checkpoint.Load(Golden);

        var weights = stored.StateDict();
        Assert.Equal(DType.BFloat16, weights["model.embed_tokens.weight"].DType);
        Assert.Equal(DType.BFloat16, weights["model.layers.0.self_attn.kv_b_proj.weight"].DType);
        Assert.Equal(DType.BFloat16, weights["model.layers.1.mlp.experts.3.down_proj.weight"].DType);
        Assert.Equal(DType.Float32, weights["model.layers.1.mlp.gate.weight"].DType);       // router stays fp32
        Assert.Equal(DType.Float32, weights["model.layers.0.input_layernorm.weight"].DType); // vectors stay fp32
        Assert.All(stored.Parameters(), p => Assert.False(p.RequiresGrad));
        Assert.All(upcast.StateDict().Values, t => Assert.Equal(DType.Float32, t.DType));
        Assert.True(report.WeightBytes < 0.6 * upcastReport.WeightBytes,
            $"bf16 weights take {report.WeightBytes} bytes, float32 {upcastReport.WeightBytes}");
        Assert.Contains(report.Notes, n => n.Contains("BFloat16 weight matrices as stored"));

        float[] bf16Full, bf16Decode;
        using (Autocast.Bf16())
        {
            bf16Full = Logits(stored);
            bf16Decode = Logits(stored, 3);
            Assert.Equal(Logits(upcast), bf16Full);
            Assert.Equal(Logits(upcast, 3), bf16Decode);
        }
        Assert.All(bf16Full, v => Assert.True(float.IsFinite(v)));

        // As a user runs it (no autocast): weights bf16, activations rounded at each weight product, the router in
        // float32 (as HF computes it). The router is the only difference from the autocast run: stored in bf16 too,
        // the two agree up to the order of the fp32 sums (outside autocast the CPU reads the bf16 rows in place with
        // the packed-bf16 kernel instead of GemmBf16).
        float[] plain = Logits(stored), reference = Logits(original);
        float[] autocastOriginal;
        using (Autocast.Bf16()) autocastOriginal = Logits(original);
        double vsOriginal = MaxRelativeError(plain, reference);
        double autocastError = MaxRelativeError(autocastOriginal, reference);
        double storedAutocastError = MaxRelativeError(bf16Full, reference);
        output.WriteLine("max |Δlogit| / max |logit| against the original float32 model: " +
            $"bf16-stored {vsOriginal:E2} (router fp32), bf16-stored under autocast {storedAutocastError:E2}, " +
            $"bf16 autocast of the float32 model {autocastError:E2}");
        Assert.True(vsOriginal < 0.25, $"bf16 model drifts {vsOriginal:E2} from the fp32 original");
        Assert.True(storedAutocastError < 2e-2, $"bf16 model under autocast drifts {storedAutocastError:E2}");
        foreach (var layer in stored.MoeLayers) layer.Gate.Weight.StoreAs(DType.BFloat16);
        Assert.True(MaxRelativeError(Logits(stored), bf16Full) < 1e-5,
            $"bf16 model with a bf16 router: {MaxRelativeError(Logits(stored), bf16Full):E2} from the autocast run");
    }

    [Fact]
    public void F16Checkpoint_KeepsF16_AndEqualsTheWidenedModel()
    {
        string dir = Narrowed(DType.Float16);
        using var stored = DeepseekV3Checkpoint.Load(dir, null, CheckpointLoadOptions.Inference, out _);
        using var upcast = DeepseekV3Checkpoint.Load(dir);
        Assert.Equal(DType.Float16, stored.StateDict()["model.layers.0.self_attn.o_proj.weight"].DType);
        Assert.Equal(Logits(upcast), Logits(stored));
        Assert.Equal(Logits(upcast, 5), Logits(stored, 5));

        // Saving keeps the stored type; reloading gives the same model.
        string again = Path.Combine(_dir, "again");
        DeepseekV3Checkpoint.Save(stored, again);
        using (var ckpt = SafetensorsCheckpoint.Open(again))
            Assert.Equal(DType.Float16, ckpt.GetEntry("model.layers.0.self_attn.o_proj.weight").DType);
        using var reloaded = DeepseekV3Checkpoint.Load(again, null, CheckpointLoadOptions.Inference, out _);
        Assert.Equal(Logits(stored), Logits(reloaded));
    }

    [Fact]
    public void Fp8Checkpoint_ForInference_DequantisesOnceToBf16()
    {
        using var stored = DeepseekV3Checkpoint.Load(Fixture("deepseek-v3-fp8"), null, CheckpointLoadOptions.Inference,
            out var report);
        using var dequant = DeepseekV3Checkpoint.Load(Fixture("deepseek-v3-fp8-dequant"));
        var w = stored.StateDict()["model.layers.0.mlp.down_proj.weight"];
        Assert.Equal(DType.BFloat16, w.DType);
        Assert.Contains(report.Notes, n => n.Contains("to bfloat16"));
        // Each weight is the float32 dequantisation rounded once to bf16.
        using (var scope = new TensorScope())
        {
            float[] wide = w.To(DType.Float32).ToArray();
            float[] exact = dequant.StateDict()["model.layers.0.mlp.down_proj.weight"].ToArray();
            for (int i = 0; i < wide.Length; i++)
            {
                uint rounded = (uint)Fp8BlockDequant.RoundToBFloat16(exact[i]) << 16;
                Assert.Equal(BitConverter.UInt32BitsToSingle(rounded), wide[i]);
            }
        }
        double err = MaxRelativeError(Logits(stored), Logits(dequant));
        output.WriteLine($"FP8 → bf16 model logits vs the float32 dequantised model: max rel. error {err:E2}");
        Assert.True(err < 5e-2);
    }
}
