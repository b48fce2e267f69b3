using NativeReasoner.Autograd;
using NativeReasoner.Kernels;
using Xunit;
using static NativeReasoner.Tests.Verification.VerificationUtil;

namespace NativeReasoner.Tests.Verification;

/// <summary>
/// ggml test-backend-ops style: every row of <see cref="OpCatalog"/> runs on <see cref="Device.Cpu"/> and on
/// <see cref="Device.Reference"/> with the same inputs; outputs and input gradients must agree. Then autograd
/// is checked against finite differences on each device.
/// </summary>
public class OpCaseTests
{
    public static IEnumerable<object[]> Cases => OpCatalog.Names();
    public static IEnumerable<object[]> DifferentiableCases => OpCatalog.DifferentiableNames();

    /// <summary>Outputs and gradients of one case on one device, in managed memory.</summary>
    private sealed record DeviceRun(HostTensor[] Outputs, HostTensor?[] Grads);

    [Theory]
    [MemberData(nameof(Cases))]
    public void CpuMatchesReference(string name) => MatchesReference(name, Device.Cpu);

    /// <summary>The same table on the ILGPU device (on this machine usually ILGPU's CPU accelerator).</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void IlgpuMatchesReference(string name) => MatchesReference(name, Device.Ilgpu);

    /// <summary>The same table on the CUDA backend running on the CPU emulator ("cuda:emu").</summary>
    [NativeReasoner.Tests.Cuda.CudaTheory(NativeReasoner.Kernels.Cuda.Native.CudaRuntimeKind.Emulator)]
    [MemberData(nameof(Cases))]
    public void CudaEmulatorMatchesReference(string name) => MatchesReference(name, Device.Parse("cuda:emu"));

    /// <summary>The same table on a real GPU (skipped, saying why, where there is none).</summary>
    [NativeReasoner.Tests.Cuda.CudaTheory(NativeReasoner.Kernels.Cuda.Native.CudaRuntimeKind.Gpu)]
    [MemberData(nameof(Cases))]
    public void CudaGpuMatchesReference(string name) => MatchesReference(name, Device.Parse("cuda"));

    private static void MatchesReference(string name, Device device)
    {
        var c = OpCatalog.Get(name);
        var inputs = c.DrawInputs();
        var reference = RunOn(c, inputs, Device.Reference);
        var actual = RunOn(c, inputs, device);

        var failures = new List<string>();
        Assert.Equal(reference.Outputs.Length, actual.Outputs.Length);
        for (int k = 0; k < reference.Outputs.Length; k++)
            CompareHost($"output {k}", actual.Outputs[k], reference.Outputs[k], c.Tolerance, failures);
        for (int i = 0; i < c.Inputs.Length; i++)
        {
            if (reference.Grads[i] is not { } rg) continue;
            CompareHost($"grad of '{c.Inputs[i].Name}'", actual.Grads[i]!, rg, c.Tolerance, failures);
        }
        Assert.True(failures.Count == 0, $"{name}: {device} vs reference\n  " + string.Join("\n  ", failures));
    }

    [Theory]
    [MemberData(nameof(DifferentiableCases))]
    public void GradCheckReference(string name) => RunGradCheck(name, Device.Reference);

    [Theory]
    [MemberData(nameof(DifferentiableCases))]
    public void GradCheckCpu(string name) => RunGradCheck(name, Device.Cpu);

    [Fact]
    public void CatalogCoversEveryOpOnAwkwardSizes()
    {
        // A guard against the table shrinking by accident: the ops and sizes the brief asks for are all there.
        var ops = OpCatalog.All.Values.Select(c => c.Op).ToHashSet();
        foreach (var op in new[] { "add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "rsqrt", "silu", "sigmoid", "tanh",
                     "matmul", "linear", "sum", "mean", "max", "min", "narrow", "slice", "permute", "expand", "where", "masked_fill" })
            Assert.Contains(op, ops);
        var sizes = OpCatalog.All.Values.SelectMany(c => c.Inputs).SelectMany(i => i.Shape).ToHashSet();
        foreach (var n in new[] { 1, 7, 13, 31, 257, 1031 }) Assert.Contains(n, sizes);
    }

    private static void RunGradCheck(string name, Device device)
    {
        var c = OpCatalog.Get(name);
        var inputs = c.DrawInputs();
        using var scope = new TensorScope();
        var all = inputs.Select(h => h.ToTensor(device)).ToArray();
        var gradIndices = Enumerable.Range(0, c.Inputs.Length).Where(i => c.Inputs[i].Grad).ToArray();
        Assert.NotEmpty(gradIndices);
        var report = GradCheck.Run(leaves =>
        {
            // The perturbed leaves replace the differentiable inputs; masks and indices stay fixed.
            var args = (Tensor[])all.Clone();
            for (int j = 0; j < gradIndices.Length; j++) args[gradIndices[j]] = leaves[j];
            return c.Fn(args);
        }, gradIndices.Select(i => all[i]).ToArray(),
            new GradCheckOptions { Epsilon = c.GradEps, Tolerance = c.GradTol }, $"{name} on {device}");
        Assert.True(report.Passed, report.ToString());
    }

    private static DeviceRun RunOn(OpCase c, HostTensor[] inputs, Device device)
    {
        using var scope = new TensorScope();
        var tensors = inputs.Select(h => h.ToTensor(device)).ToArray();
        for (int i = 0; i < tensors.Length; i++)
            if (c.Differentiable && c.Inputs[i].Grad) tensors[i].RequiresGrad_();
        var outs = c.Fn(tensors);
        var hostOuts = outs.Select(ToHost).ToArray();
        var grads = new HostTensor?[tensors.Length];
        if (!c.Differentiable) return new DeviceRun(hostOuts, grads);

        // Upstream gradients: fixed per case and output, identical on both devices.
        var g = new Generator(StableHash(c.Name + "/gout"));
        int last = Array.FindLastIndex(outs, o => o.DType == DType.Float32);
        for (int k = 0; k < outs.Length; k++)
        {
            if (outs[k].DType != DType.Float32) continue;
            Assert.True(outs[k].RequiresGrad, $"{c.Name} on {device}: output {k} does not require grad (no graph recorded)");
            var gout = Tensor.Randn(outs[k].Shape, g, 1f, device);
            outs[k].Backward(gout, retainGraph: k != last);
        }
        for (int i = 0; i < tensors.Length; i++)
            if (c.Inputs[i].Grad)
            {
                var grad = tensors[i].Grad;
                Assert.True(grad != null, $"{c.Name} on {device}: input '{c.Inputs[i].Name}' received no gradient");
                grads[i] = ToHost(grad!);
            }
        return new DeviceRun(hostOuts, grads);
    }

    internal static void CompareHost(string what, HostTensor actual, HostTensor expected, double tol, List<string> failures)
    {
        if (!actual.Shape.SequenceEqual(expected.Shape))
        {
            failures.Add($"{what}: shape {Shape(actual.Shape)} vs {Shape(expected.Shape)}");
            return;
        }
        if (actual.IsFloat != expected.IsFloat)
        {
            failures.Add($"{what}: dtype differs ({(actual.IsFloat ? "float" : "int")} vs {(expected.IsFloat ? "float" : "int")})");
            return;
        }
        if (!expected.IsFloat)
        {
            // Indices are exact.
            if (!actual.Longs!.SequenceEqual(expected.Longs!))
                failures.Add($"{what}: indices differ: [{string.Join(", ", actual.Longs!.Take(16))}] vs [{string.Join(", ", expected.Longs!.Take(16))}]");
            return;
        }
        double err = RelativeError(actual.Floats, expected.Floats);
        if (!Within(err, tol))
            failures.Add($"{what}: rel error {err:G3} > {tol:G3} ({WorstElement(actual.Floats, expected.Floats)})");
    }
}
