using System.Text.Json;
using NativeReasoner.IO;
using NativeReasoner.Nn;
using NativeReasoner.Optim;
using NativeReasoner.Tests.Nn;
using Xunit;
using static NativeReasoner.Tests.Optim.OptimTestHelpers;

namespace NativeReasoner.Tests.Optim;

/// <summary>
/// Trajectories computed by PyTorch (tests/reference/ops.py → tests/fixtures/optim.safetensors, float64
/// from float32 inputs): parameters a [37] and b [5, 3], 10 steps with a fresh gradient each step.
/// </summary>
public sealed class OptimFixtureTests
{
    private static readonly (string Name, int[] Shape)[] Params = [("a", [37]), ("b", [5, 3])];
    private const int Steps = 10;

    private static SafetensorsFile OpenFixture() =>
        SafetensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", "optim.safetensors"));

    private static void RunTrajectory(string prefix, Device device, Func<Parameter[], Optimizer> make)
    {
        using var file = OpenFixture();
        var ps = Params.Select(p => NewParameter(file.ReadFloat32($"{prefix}.param.0.{p.Name}"), device, p.Shape)).ToArray();
        try
        {
            using var opt = make(ps);
            for (int t = 1; t <= Steps; t++)
            {
                for (int i = 0; i < ps.Length; i++) SetGrad(ps[i], file.ReadFloat32($"{prefix}.grad.{t}.{Params[i].Name}"));
                opt.Step();
                for (int i = 0; i < ps.Length; i++)
                    TestDevices.AssertClose(file.ReadFloat32($"{prefix}.param.{t}.{Params[i].Name}"), ps[i].ToArray(),
                        atol: 2e-5, rtol: 1e-4, what: $"{prefix} step {t} {Params[i].Name}");
            }
        }
        finally
        {
            foreach (var p in ps) p.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void AdamW_Matches_Torch(string deviceName)
    {
        using (var file = OpenFixture())
        {
            // Guard against the fixture's hyperparameters drifting from the ones hard-coded below.
            using var hp = JsonDocument.Parse(file.Metadata["adamw"]);
            Assert.Equal(1e-2, hp.RootElement.GetProperty("lr").GetDouble());
            Assert.Equal(0.1, hp.RootElement.GetProperty("weight_decay").GetDouble());
        }
        RunTrajectory("adamw", Device.Parse(deviceName),
            ps => new AdamW(ps, lr: 1e-2f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.1f));
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Sgd_Matches_Torch(string deviceName) =>
        RunTrajectory("sgd", Device.Parse(deviceName),
            ps => new Sgd(ps, lr: 0.05f, momentum: 0.9f, dampening: 0f, weightDecay: 0.01f, nesterov: false));

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Sgd_Nesterov_Matches_Torch(string deviceName) =>
        RunTrajectory("sgd_nesterov", Device.Parse(deviceName),
            ps => new Sgd(ps, lr: 0.05f, momentum: 0.9f, dampening: 0f, weightDecay: 0.01f, nesterov: true));

    [Theory]
    [InlineData("clip")]
    [InlineData("clip_noop")]
    public void ClipGradNorm_Matches_Torch(string prefix)
    {
        using var file = OpenFixture();
        int[][] shapes = [[10], [4, 5], [3]];
        var ps = shapes.Select((s, i) =>
        {
            var p = NewParameter(new float[s.Aggregate(1, (x, y) => x * y)], Device.Cpu, s);
            SetGrad(p, file.ReadFloat32($"{prefix}.grad.{i}"));
            return p;
        }).ToArray();
        try
        {
            float norm = GradClip.ClipGradNorm(ps, maxNorm: 1f);
            TestDevices.AssertClose(file.ReadFloat32($"{prefix}.total_norm"), [norm], atol: 1e-6, what: "norm");
            for (int i = 0; i < ps.Length; i++)
                TestDevices.AssertClose(file.ReadFloat32($"{prefix}.clipped.{i}"), ps[i].Grad!.ToArray(), atol: 1e-6, what: $"grad {i}");
        }
        finally
        {
            foreach (var p in ps) p.Dispose();
        }
    }

    /// <summary>The fixture's schedule uses the same 0-based step index as CosineDecay.LearningRate.</summary>
    [Fact]
    public void CosineDecay_Agrees_With_The_Fixture_Formula()
    {
        using var file = OpenFixture();
        var values = file.ReadFloat32("lr_schedule.values");
        var s = new CosineDecay(1e-2f, warmupSteps: 10, totalSteps: 100, minLrRatio: 0.1f);
        for (int step = 0; step < 100; step++)
            TestDevices.AssertClose([values[step]], [s.LearningRate(step)], atol: 1e-9, rtol: 1e-6, what: $"lr(step={step})");
    }
}
