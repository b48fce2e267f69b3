using NativeReasoner.IO;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// deepseek_v2 (greedy and group-limited V2 routers) on the other backends against the CPU's PyTorch fixtures:
/// full logits, every gradient of cross-entropy + balance loss, and the cached decode, ≤ 1e-4 relative.
/// </summary>
public sealed class DeepseekV2DeviceTests(ITestOutputHelper output)
{
    [Fact]
    public void MatchPyTorchOnTheReferenceBackend() => MatchPyTorchOn("reference");

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void MatchPyTorchOnTheCudaEmulator() => MatchPyTorchOn("cuda:emu");

    [CudaFact(CudaRuntimeKind.Gpu)]
    public void MatchPyTorchOnTheGpu() => MatchPyTorchOn("cuda");

    private void MatchPyTorchOn(string deviceName)
    {
        var device = Device.Parse(deviceName);
        foreach (var variant in new[] { "greedy", "grouped" })
        {
            string dir = Fixture("deepseek-v2-ref-" + variant), expected = Path.Combine(dir, "expected.safetensors");
            using var file = SafetensorsFile.Open(expected);
            float alpha = float.Parse(file.Metadata["alpha"], System.Globalization.CultureInfo.InvariantCulture);
            var (ids, b, t) = ReadIds(expected, "input_ids");
            var (targets, _, _) = ReadIds(expected, "targets");
            using var model = Assert.IsType<DeepseekV3ForCausalLM>(CausalLMRegistry.Load(dir, device));
            model.Train();
            model.SetBalanceLossAlpha(alpha);
            int v = model.Config.VocabSize;
            double logitErr, gradErr = 0;
            using (var scope = new TensorScope())
            {
                var logits = model.Forward(Tensor.FromArray(ids, [b, t]).To(device));
                logitErr = RelError(logits.ToArray(), file.ReadFloat32("logits"));
                var ce = Functional.CrossEntropy(logits.View(b * t, v), Tensor.FromArray(targets, [b * t]).To(device));
                (ce + model.BalanceLoss()!).Backward();
            }
            foreach (var (name, param) in model.NamedParameters())
            {
                var want = file.ReadFloat32("grad." + name);
                gradErr = Math.Max(gradErr, RelError(param.Grad?.ToArray() ?? new float[want.Length], want));
            }
            model.Eval();
            const int p = 7;
            var full = file.ReadFloat32("logits");
            var tail = new float[b * (t - p) * v];
            for (int i = 0; i < b; i++) Array.Copy(full, (i * t + p) * v, tail, i * (t - p) * v, (t - p) * v);
            double decodeErr = RelError(LogitsRunner.Run(model, ids, b, t, decodeFrom: p), tail);
            output.WriteLine($"deepseek_v2 {variant} on {deviceName}: logits {logitErr:E3}, decode {decodeErr:E3}, " +
                $"worst gradient {gradErr:E3}");
            Assert.True(logitErr <= 1e-4, $"{variant} logits: {logitErr:E3}");
            Assert.True(decodeErr <= 1e-4, $"{variant} decode: {decodeErr:E3}");
            Assert.True(gradErr <= 1e-4, $"{variant} gradients: {gradErr:E3}");
        }
    }
}
