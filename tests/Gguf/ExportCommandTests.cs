using NativeReasoner.Cli;
using NativeReasoner.Model;
using NativeReasoner.Tests.Model;
using Xunit;

namespace NativeReasoner.Tests.Gguf;

/// <summary>`nr export --gguf`: writes a file the loader reads back to the same logits; bad input is one clear
/// line.</summary>
public sealed class ExportCommandTests : IDisposable
{
    private readonly string _dir = ModelTestUtil.TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void Export_WritesAFileThatReloadsToTheSameLogits()
    {
        string model = ModelTestUtil.Fixture("qwen3-tiny-ref");
        string gguf = Path.Combine(_dir, "out.gguf");
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(0, ExportCommand.Run(model, gguf, "f32", output, error));
        Assert.Contains("wrote", output.ToString());
        Assert.Contains("no tokenizer", error.ToString());
        using var a = CausalLMRegistry.Load(model);
        using var b = CausalLMRegistry.Load(gguf);
        using var scope = new TensorScope();
        var ids = Tensor.FromArray(new long[] { 3, 1, 4, 1, 5, 9, 2, 6 }, 1, 8);
        Assert.Equal(a.Forward(ids).ToArray(), b.Forward(ids).ToArray());
    }

    [Fact]
    public void BadInput_IsOneClearLine()
    {
        var error = new StringWriter();
        Assert.Equal(1, ExportCommand.Run(ModelTestUtil.Fixture("qwen3-tiny-ref"), Path.Combine(_dir, "x.gguf"), "q3_k",
            TextWriter.Null, error));
        Assert.Contains("--dtype 'q3_k'", error.ToString());
        error = new StringWriter();
        Assert.Equal(1, ExportCommand.Run(Path.Combine(_dir, "missing"), Path.Combine(_dir, "x.gguf"), "f16",
            TextWriter.Null, error));
        Assert.StartsWith("nr export:", error.ToString());
        Assert.DoesNotContain("   at ", error.ToString());
    }
}
