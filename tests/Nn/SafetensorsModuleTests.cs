using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Nn;

public sealed class SafetensorsModuleTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "nr-nn-" + Guid.NewGuid().ToString("N"));

    public SafetensorsModuleTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void Save_Then_Load_Restores_Every_Tensor()
    {
        var path = Path.Combine(_dir, "tiny.safetensors");
        using var a = new TinyModel(1);
        using (Tensor.NoGrad()) a.Layers[1].Scale.Fill_(2f);
        a.SaveSafetensors(path, new Dictionary<string, string> { ["note"] = "test" });

        using (var file = SafetensorsFile.Open(path))
        {
            Assert.Equal(a.StateDict().Keys.Order(StringComparer.Ordinal), file.Entries.Select(e => e.Name).Order(StringComparer.Ordinal));
            Assert.Equal([2L, 4L], file.GetEntry("layers.0.out.weight").Shape);
            Assert.Equal("test", file.Metadata["note"]);
        }

        using var b = new TinyModel(2);
        var result = b.LoadSafetensors(path);
        Assert.Empty(result.MissingKeys);
        foreach (var (name, t) in a.StateDict())
            Assert.Equal(t.ToArray(), b.StateDict()[name].ToArray());
    }

    [Fact]
    public void Load_Converts_BFloat16_Entries()
    {
        var path = Path.Combine(_dir, "bf16.safetensors");
        using var model = new TinyModel(1, layers: 0);
        // 1.5 and −2.25 are exact in bfloat16 (upper 16 bits of the float32 pattern).
        var values = Enumerable.Range(0, 12).Select(i => i % 2 == 0 ? 1.5f : -2.25f).ToArray();
        var bytes = values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray();
        SafetensorsWriter.Write(path, [new SafetensorsTensor("emb", DType.BFloat16, [3, 4], bytes)]);
        model.LoadSafetensors(path);
        Assert.Equal(values, model.Emb.ToArray());
    }

    [Fact]
    public void Load_Errors_Name_The_Tensor()
    {
        var path = Path.Combine(_dir, "bad.safetensors");
        SafetensorsWriter.Write(path,
        [
            new SafetensorsTensor("emb", DType.Float32, [4, 3], new byte[48]),
            new SafetensorsTensor("extra", DType.Float32, [1], new byte[4]),
        ]);
        using var model = new TinyModel(1, layers: 0);
        var ex = Assert.Throws<ArgumentException>(() => model.LoadSafetensors(path));
        Assert.Contains("'extra'", ex.Message);
        var shape = Assert.Throws<ArgumentException>(() => model.LoadSafetensors(path, strict: false));
        Assert.Contains("'emb'", shape.Message);
        Assert.Contains("[4, 3]", shape.Message);
        Assert.Contains("[3, 4]", shape.Message);
    }
}
