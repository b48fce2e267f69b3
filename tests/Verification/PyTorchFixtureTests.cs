using System.Globalization;
using System.Text;
using NativeReasoner.Kernels;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Verification.VerificationUtil;

namespace NativeReasoner.Tests.Verification;

/// <summary>
/// llm.c-style check against PyTorch: every case of tests/fixtures/ops.safetensors (written by
/// tests/reference/ops.py) is recomputed on both devices, forward and backward (upstream gradient gout), and
/// compared with PyTorch's float64-computed, float32-rounded answer. The worst error per op is printed and
/// written to TestResults/op-errors.md.
/// </summary>
public class PyTorchFixtureTests(ITestOutputHelper output)
{
    private static readonly Device[] Devices = [Device.Reference, Device.Cpu];

    /// <summary>Worst relative errors of one op on one device.</summary>
    private sealed class OpErrors
    {
        public int Cases;
        public double Forward;
        public double Grad;
        public void Add(double fwd, double grad)
        {
            // NaN is the worst of all and must stay visible in the table.
            Forward = double.IsNaN(Forward) || double.IsNaN(fwd) ? double.NaN : Math.Max(Forward, fwd);
            Grad = double.IsNaN(Grad) || double.IsNaN(grad) ? double.NaN : Math.Max(Grad, grad);
        }
    }

    private static string OpsPath => Path.Combine(FixtureFile.Directory, "ops.safetensors");

    private static FixtureFile LoadOps()
    {
        Assert.True(File.Exists(OpsPath),
            $"fixture {OpsPath} not found; generate it with tests/reference/ops.py or point NR_FIXTURES_DIR at its folder");
        return FixtureFile.Load(OpsPath);
    }

    [Fact]
    public void FixtureDescribesEveryTensor()
    {
        var file = LoadOps();
        Assert.True(file.Metadata.TryGetValue("cases", out var json), "ops.safetensors has no 'cases' metadata");
        var cases = FixtureCase.Parse(json!);
        Assert.NotEmpty(cases);
        var expected = new HashSet<string>();
        foreach (var c in cases)
        {
            foreach (var i in c.Inputs) expected.Add($"{c.Name}.in.{i}");
            for (int k = 0; k < c.Outputs; k++) expected.Add(c.OutputName(k));
            foreach (var g in c.Grads) expected.Add($"{c.Name}.grad.{g}");
        }
        var missing = expected.Where(n => !file.Contains(n)).ToList();
        Assert.True(missing.Count == 0, "tensors named by the case list but absent: " + string.Join(", ", missing));
        // Every stored tensor belongs to a case (gouts are checked when used).
        var stray = file.Names.Where(n => !expected.Contains(n) && !n.Contains(".gout")).ToList();
        Assert.True(stray.Count == 0, "tensors not described by any case: " + string.Join(", ", stray));
    }

    [Fact]
    public void AnUnknownOpFailsInsteadOfBeingSkipped()
    {
        using var doc = System.Text.Json.JsonDocument.Parse("{}");
        var c = new FixtureCase("future_case", "frobnicate", ["x"], doc.RootElement.Clone(), 1, ["x"]);
        using var scope = new TensorScope();
        var inputs = new Dictionary<string, Tensor> { ["x"] = Tensor.Zeros(2) };
        var e = Assert.Throws<UnknownFixtureOpException>(() => FixtureOps.Apply(c, inputs));
        Assert.Contains("frobnicate", e.Message);
    }

    [Fact]
    public void EveryFixtureOpAlsoHasCpuVersusReferenceCases()
    {
        // The fixture pins one size per case; the op table adds awkward sizes and layouts on both devices.
        var file = LoadOps();
        var tableOps = OpCatalog.All.Values.Select(c => c.Op).ToHashSet();
        var missing = FixtureCase.Parse(file.Metadata["cases"]).Select(c => c.Op).Distinct().Where(op => !tableOps.Contains(op)).ToList();
        Assert.True(missing.Count == 0, "fixture ops without rows in OpCatalog: " + string.Join(", ", missing));
    }

    [Fact]
    public void EveryCaseMatchesPyTorch()
    {
        var file = LoadOps();
        var cases = FixtureCase.Parse(file.Metadata["cases"]);
        var failures = new List<string>();
        var errors = new SortedDictionary<string, Dictionary<Device, OpErrors>>(StringComparer.Ordinal);

        foreach (var device in Devices)
            foreach (var c in cases)
            {
                double fwd = 0, grad = 0;
                try
                {
                    (fwd, grad) = RunCase(file, c, device, failures);
                }
                catch (UnknownFixtureOpException e)
                {
                    failures.Add($"[{device}] {e.Message}");
                    fwd = grad = double.NaN;
                }
                catch (Exception e)
                {
                    failures.Add($"[{device}] {c.Name} ({c.Op}): {e.GetType().Name}: {e.Message}");
                    fwd = grad = double.NaN;
                }
                if (!errors.TryGetValue(c.Op, out var perDevice)) errors[c.Op] = perDevice = new();
                if (!perDevice.TryGetValue(device, out var e2)) perDevice[device] = e2 = new OpErrors();
                e2.Cases++;
                e2.Add(fwd, grad);
            }

        var table = FormatTable(errors, cases.Count);
        output.WriteLine(table);
        WriteReport(table);
        Assert.True(failures.Count == 0, $"{failures.Count} fixture comparisons failed:\n  " + string.Join("\n  ", failures));
    }

    /// <summary>Returns the worst forward and gradient relative errors of the case; appends failures.</summary>
    private static (double fwd, double grad) RunCase(FixtureFile file, FixtureCase c, Device device, List<string> failures)
    {
        double tol = FixtureOps.Tolerance(c.Op);
        using var scope = new TensorScope();
        var inputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var name in c.Inputs)
        {
            var x = file.Get($"{c.Name}.in.{name}").ToTensor(device);
            if (c.Grads.Contains(name)) x.RequiresGrad_();
            inputs[name] = x;
        }
        var outs = FixtureOps.Apply(c, inputs);
        if (outs.Length != c.Outputs)
        {
            failures.Add($"[{device}] {c.Name}: {outs.Length} outputs, fixture has {c.Outputs}");
            return (double.NaN, double.NaN);
        }

        double worstFwd = 0, worstGrad = 0;
        for (int k = 0; k < outs.Length; k++)
            worstFwd = Worst(worstFwd, Compare($"[{device}] {c.Name} ({c.Op}) output {k}", ToHost(outs[k]), file.Get(c.OutputName(k)), tol, failures));

        if (c.Grads.Length == 0) return (worstFwd, 0);
        // d/dx Σₖ Σ outₖ ⊙ goutₖ: one backward per float output, keeping the shared graph until the last.
        int last = Array.FindLastIndex(outs, o => o.DType == DType.Float32);
        for (int k = 0; k < outs.Length; k++)
        {
            if (outs[k].DType != DType.Float32) continue;
            var gout = file.Get(c.GoutName(k)).ToTensor(device);
            outs[k].Backward(gout, retainGraph: k != last);
        }
        foreach (var name in c.Grads)
        {
            var g = inputs[name].Grad;
            if (g == null)
            {
                failures.Add($"[{device}] {c.Name} ({c.Op}): input '{name}' received no gradient");
                worstGrad = double.NaN;
                continue;
            }
            worstGrad = Worst(worstGrad, Compare($"[{device}] {c.Name} ({c.Op}) grad of '{name}'", ToHost(g), file.Get($"{c.Name}.grad.{name}"), tol, failures));
        }
        return (worstFwd, worstGrad);
    }

    private static double Worst(double a, double b) => double.IsNaN(a) || double.IsNaN(b) ? double.NaN : Math.Max(a, b);

    private static double Compare(string what, HostTensor actual, HostTensor expected, double tol, List<string> failures)
    {
        if (!actual.Shape.SequenceEqual(expected.Shape))
        {
            failures.Add($"{what}: shape {Shape(actual.Shape)}, PyTorch {Shape(expected.Shape)}");
            return double.NaN;
        }
        if (!expected.IsFloat)
        {
            bool same = !actual.IsFloat && actual.Longs!.SequenceEqual(expected.Longs!);
            if (!same) failures.Add($"{what}: integer output differs from PyTorch");
            return same ? 0 : double.NaN;
        }
        if (!actual.IsFloat)
        {
            failures.Add($"{what}: integer output where PyTorch has float");
            return double.NaN;
        }
        double err = RelativeError(actual.Floats, expected.Floats);
        if (!Within(err, tol))
            failures.Add($"{what}: rel error {err:G3} > {tol:G3} ({WorstElement(actual.Floats, expected.Floats)})");
        return err;
    }

    private static string FormatTable(SortedDictionary<string, Dictionary<Device, OpErrors>> errors, int caseCount)
    {
        static string F(double v) => double.IsNaN(v) ? "**NaN/fail**" : v.ToString("0.00e+00", CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.AppendLine("# Worst relative error per op against the PyTorch fixture");
        sb.AppendLine();
        sb.AppendLine($"Fixture: `tests/fixtures/ops.safetensors` ({caseCount} cases). Error = ‖out − torch‖₂ / ‖torch‖₂ over the");
        sb.AppendLine("output (fwd) and over each input gradient (grad, upstream gradient = the fixture's gout); worst case per op.");
        sb.AppendLine();
        sb.AppendLine("| op | cases | tolerance | reference fwd | reference grad | cpu fwd | cpu grad |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (op, perDevice) in errors)
        {
            var r = perDevice.GetValueOrDefault(Device.Reference) ?? new OpErrors();
            var c = perDevice.GetValueOrDefault(Device.Cpu) ?? new OpErrors();
            sb.AppendLine($"| {op} | {r.Cases} | {FixtureOps.Tolerance(op):0e+0} | {F(r.Forward)} | {F(r.Grad)} | {F(c.Forward)} | {F(c.Grad)} |");
        }
        return sb.ToString();
    }

    /// <summary>
    /// Writes the table to TestResults/op-errors.md at the repository root (the folder holding
    /// NativeReasoner.sln above the test assembly), or under NR_TEST_RESULTS_DIR when set.
    /// </summary>
    private void WriteReport(string table)
    {
        var dir = Environment.GetEnvironmentVariable("NR_TEST_RESULTS_DIR");
        if (string.IsNullOrWhiteSpace(dir))
        {
            var root = new DirectoryInfo(AppContext.BaseDirectory);
            while (root != null && !File.Exists(Path.Combine(root.FullName, "NativeReasoner.sln"))) root = root.Parent;
            dir = Path.Combine(root?.FullName ?? Directory.GetCurrentDirectory(), "TestResults");
        }
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "op-errors.md");
        File.WriteAllText(path, table);
        output.WriteLine($"written to {path}");
    }
}
