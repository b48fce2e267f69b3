using NativeReasoner.IO;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// The dense families (qwen2, llama, qwen3, qwen3_moe) on the other backends against the same PyTorch fixtures as the CPU:
/// full logits, cached decode through the GQA K/V cache and every parameter's gradient, ≤ 1e-4 relative.
/// </summary>
public sealed class DenseFamiliesDeviceTests(ITestOutputHelper output)
{
    private static readonly string[] Fixtures = ["qwen2-tiny-ref", "llama-tiny-ref", "qwen3-tiny-ref", "qwen3-moe-tiny-ref"];

    [Fact]
    public void MatchPyTorchOnTheReferenceBackend() => MatchPyTorchOn("reference");

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void MatchPyTorchOnTheCudaEmulator() => MatchPyTorchOn("cuda:emu");

    [CudaFact(CudaRuntimeKind.Gpu)]
    public void MatchPyTorchOnTheGpu() => MatchPyTorchOn("cuda");

    private void MatchPyTorchOn(string deviceName)
    {
        var device = Device.Parse(deviceName);
        foreach (var fixture in Fixtures)
        {
            string dir = Fixture(fixture), expected = Path.Combine(dir, "expected.safetensors");
            using var file = SafetensorsFile.Open(expected);
            int p = int.Parse(file.Metadata["prefill"], System.Globalization.CultureInfo.InvariantCulture);
            var (ids, b, t) = ReadIds(expected, "input_ids");
            var (targets, _, _) = ReadIds(expected, "targets");
            using var model = CausalLMRegistry.Load(dir, device);
            int v = model.Config.VocabSize;
            double logitErr, gradErr = 0;
            using (var scope = new TensorScope())
            {
                var logits = model.Forward(Tensor.FromArray(ids, [b, t]).To(device));
                logitErr = RelError(logits.ToArray(), file.ReadFloat32("logits"));
                Functional.CrossEntropy(logits.View(b * t, v), Tensor.FromArray(targets, [b * t]).To(device)).Backward();
            }
            foreach (var (name, param) in model.NamedParameters())
            {
                var want = file.ReadFloat32("grad." + name);
                gradErr = Math.Max(gradErr, RelError(param.Grad?.ToArray() ?? new float[want.Length], want));
            }
            model.Eval();
            double decodeErr = RelError(LogitsRunner.Run(model, ids, b, t, decodeFrom: p), file.ReadFloat32("decode_logits"));
            output.WriteLine($"{fixture} on {deviceName}: logits {logitErr:E3}, decode {decodeErr:E3}, worst gradient {gradErr:E3}");
            Assert.True(logitErr <= 1e-4, $"{fixture} logits: {logitErr:E3}");
            Assert.True(decodeErr <= 1e-4, $"{fixture} decode: {decodeErr:E3}");
            Assert.True(gradErr <= 1e-4, $"{fixture} gradients: {gradErr:E3}");
        }
    }
}
