using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;
using NativeReasoner.Nn;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// qwen3_moe checkpoints with fused experts (transformers ≥ 5: mlp.experts.gate_up_proj [E, 2·I, H], gate rows then
/// up rows, and mlp.experts.down_proj [E, H, I]) load into the per-expert parameters: the tiny fixture's weights
/// restacked in the fused layout give the same logits bit for bit as the one-by-one file, in float32 and in bf16
/// (kept as stored and widened); saving keeps the one-by-one names; a mis-shaped fused tensor and a file holding
/// both spellings are clear errors.
/// </summary>
public sealed class DenseFamiliesFusedExpertsTests : IDisposable
{
    private const string Fixture_ = "qwen3-moe-tiny-ref";
    private readonly string _dir = TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static readonly long[] Ids = [5, 9, 1, 33, 2, 60, 7, 7, 12, 40, 3, 8, 0, 21, 11, 50];

    private static readonly Regex ExpertWeight =
        new(@"^(?<prefix>.+\.experts)\.(?<e>\d+)\.(?<proj>gate_proj|up_proj|down_proj)\.weight$");

    private static float[] Logits(ICausalLM m) => LogitsRunner.Run(m, Ids, 2, 8);

    /// <summary>The fixture's tensors as (name, shape, float32 values).</summary>
    private static List<(string Name, long[] Shape, float[] Values)> FixtureTensors()
    {
        using var f = SafetensorsFile.Open(Path.Combine(Fixture(Fixture_), "model.safetensors"));
        return f.Entries.Select(e => (e.Name, e.Shape, f.ReadFloat32(e.Name))).ToList();
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> in <paramref name="dtype"/> (F32 or BF16) with the fixture's config.json;
    /// with <paramref name="fuse"/> the per-expert weights are stacked into gate_up_proj / down_proj.
    /// <paramref name="keepOneByOne"/> also keeps the per-expert tensors (both spellings in one file).
    /// </summary>
    private string Write(string name, List<(string Name, long[] Shape, float[] Values)> tensors, DType dtype,
        bool fuse, bool keepOneByOne = false, Func<long[], long[]>? gateUpShape = null)
    {
        var output = new List<(string Name, long[] Shape, float[] Values)>();
        var experts = new SortedDictionary<string, SortedDictionary<int, Dictionary<string, float[]>>>(
            StringComparer.Ordinal);
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            var m = ExpertWeight.Match(t.Name);
            if (!fuse || !m.Success)
            {
                output.Add(t);
                continue;
            }
            if (keepOneByOne) output.Add(t);
            string prefix = m.Groups["prefix"].Value, proj = m.Groups["proj"].Value;
            int e = int.Parse(m.Groups["e"].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (!experts.TryGetValue(prefix, out var byExpert)) experts[prefix] = byExpert = new();
            if (!byExpert.TryGetValue(e, out var byProj)) byExpert[e] = byProj = new(StringComparer.Ordinal);
            byProj[proj] = t.Values;
            shapes[proj] = t.Shape;
        }
        foreach (var (prefix, byExpert) in experts)
        {
            int count = byExpert.Count;
            long i = shapes["gate_proj"][0], h = shapes["gate_proj"][1];
            // gate_up_proj[e] = cat(gate_proj[e], up_proj[e]) along the rows: [2·I, H].
            var gateUp = byExpert.Values.SelectMany(p => p["gate_proj"].Concat(p["up_proj"])).ToArray();
            long[] gateUpDims = [count, 2 * i, h];
            if (gateUpShape is not null)
            {
                gateUpDims = gateUpShape(gateUpDims);
                gateUp = gateUp.Take(checked((int)(gateUpDims[0] * gateUpDims[1] * gateUpDims[2]))).ToArray();
            }
            output.Add((prefix + ".gate_up_proj", gateUpDims, gateUp));
            var down = byExpert.Values.SelectMany(p => p["down_proj"]).ToArray();
            output.Add((prefix + ".down_proj", [count, h, i], down));
        }
        string dir = Path.Combine(_dir, name);
        var written = output.Select(t => new SafetensorsTensor(t.Name, dtype, t.Shape, dtype == DType.BFloat16
            ? MemoryMarshal.AsBytes(t.Values.Select(Fp8BlockDequant.RoundToBFloat16).ToArray().AsSpan()).ToArray()
            : MemoryMarshal.AsBytes(t.Values.AsSpan()).ToArray())).ToList();
        SafetensorsCheckpoint.Write(dir, written);
        File.Copy(Path.Combine(Fixture(Fixture_), "config.json"), Path.Combine(dir, "config.json"), true);
        return dir;
    }

    private static void AssertBitwiseEqual(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        Assert.DoesNotContain(actual, float.IsNaN);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"logit {i}: {actual[i]} vs {expected[i]}");
    }

    [Fact]
    public void FusedFloat32_MatchesOneByOneBitForBit_AndSavesOneByOne()
    {
        string dir = Write("fused-f32", FixtureTensors(), DType.Float32, fuse: true);
        using (var f = SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
        {
            Assert.Contains(f.Entries, e => e.Name == "model.layers.1.mlp.experts.gate_up_proj");
            Assert.DoesNotContain(f.Entries, e => e.Name.Contains(".experts.0.", StringComparison.Ordinal));
        }
        using var oneByOne = CausalLMRegistry.Load(Fixture(Fixture_));
        using var fused = CausalLMRegistry.Load(dir);
        float[] expected = Logits(oneByOne);
        AssertBitwiseEqual(expected, Logits(fused));
        using (var inference = CausalLMRegistry.Load(dir, null, CheckpointLoadOptions.Inference, out _))
            AssertBitwiseEqual(expected, Logits(inference));

        string saved = Path.Combine(_dir, "saved");
        HfCheckpoint.Save((Module)fused, saved, File.ReadAllText(Path.Combine(dir, "config.json")));
        using (var f = SafetensorsFile.Open(Path.Combine(saved, "model.safetensors")))
        {
            Assert.Contains(f.Entries, e => e.Name == "model.layers.1.mlp.experts.7.up_proj.weight");
            Assert.DoesNotContain(f.Entries, e => e.Name.EndsWith("gate_up_proj", StringComparison.Ordinal));
        }
        using var reloaded = CausalLMRegistry.Load(saved);
        AssertBitwiseEqual(expected, Logits(reloaded));
    }

    [Fact]
    public void FusedBf16_MatchesOneByOneBitForBit_KeptAsStoredAndWidened()
    {
        var tensors = FixtureTensors();
        string oneByOneDir = Write("bf16", tensors, DType.BFloat16, fuse: false);
        string fusedDir = Write("fused-bf16", tensors, DType.BFloat16, fuse: true);
        foreach (var options in new[] { CheckpointLoadOptions.Inference, CheckpointLoadOptions.Training })
        {
            using var oneByOne = CausalLMRegistry.Load(oneByOneDir, null, options, out var oneByOneReport);
            using var fused = CausalLMRegistry.Load(fusedDir, null, options, out var fusedReport);
            var weight = ((Module)fused).StateDict()["model.layers.2.mlp.experts.3.down_proj.weight"];
            Assert.Equal(options == CheckpointLoadOptions.Inference ? DType.BFloat16 : DType.Float32, weight.DType);
            Assert.Equal(oneByOneReport.Notes, fusedReport.Notes);
            AssertBitwiseEqual(Logits(oneByOne), Logits(fused));
        }
    }

    [Fact]
    public void MisShapedFusedTensor_IsAClearError()
    {
        // gate_up_proj holding only the gate rows: [E, I, H] instead of [E, 2·I, H].
        string dir = Write("fused-bad", FixtureTensors(), DType.Float32, fuse: true,
            gateUpShape: s => [s[0], s[1] / 2, s[2]]);
        var ex = Assert.Throws<CheckpointMismatchException>(() => CausalLMRegistry.Load(dir));
        Assert.Contains("'model.layers.1.mlp.experts.gate_up_proj' has shape [8, 12, 32]", ex.Message);
        Assert.Contains("expects [8, 24, 32]", ex.Message);
    }

    [Fact]
    public void BothSpellingsInOneFile_IsAClearError()
    {
        string dir = Write("fused-both", FixtureTensors(), DType.Float32, fuse: true, keepOneByOne: true);
        var ex = Assert.Throws<CheckpointMismatchException>(() => CausalLMRegistry.Load(dir));
        Assert.Contains("unexpected tensor 'model.layers.1.mlp.experts.down_proj'", ex.Message);
    }
}
