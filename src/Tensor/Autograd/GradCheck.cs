using System.Text;
using NativeReasoner.Kernels;

namespace NativeReasoner.Autograd;

/// <summary>Settings of <see cref="GradCheck"/>.</summary>
public sealed record GradCheckOptions
{
    /// <summary>
    /// Finite-difference step. float32 forwards carry ~6e-8 relative noise, so the step must be large
    /// enough that (f(x+h) − f(x−h)) stands well above it, and small enough that the O(h²) truncation of
    /// the central difference stays below the tolerance: 1e-3 fits smooth ops with O(1) inputs.
    /// </summary>
    public float Epsilon { get; init; } = 1e-3f;

    /// <summary>Largest accepted ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖, floor) per input.</summary>
    public double Tolerance { get; init; } = 1e-2;

    /// <summary>
    /// Per-element RMS below which a gradient counts as zero: the denominator never drops below
    /// AbsoluteFloor·√(probes), so an all-zero gradient is compared absolutely instead of dividing noise by noise.
    /// </summary>
    public double AbsoluteFloor { get; init; } = 1e-3;

    /// <summary>
    /// Elements probed per input. Inputs up to this size are probed completely; larger ones at a
    /// deterministic sample (always including the first and last element), which keeps the check
    /// cheap for large inputs while still touching both ends of the buffer.
    /// </summary>
    public int MaxProbesPerInput { get; init; } = 64;

    /// <summary>Seed of the fixed random projection r and of the probe sample.</summary>
    public ulong Seed { get; init; } = 0x5EED_1234UL;
}

/// <summary>Result for one input of a gradient check.</summary>
public sealed record GradCheckInputResult(
    int Index,
    int[] Shape,
    int Probes,
    double RelativeError,
    double MaxAbsDifference,
    long WorstElement,
    double AnalyticAtWorst,
    double NumericAtWorst,
    bool Passed);

/// <summary>What <see cref="GradCheck.Run"/> found: the worst relative error per input.</summary>
public sealed record GradCheckReport(string Name, double Tolerance, IReadOnlyList<GradCheckInputResult> Inputs)
{
    /// <summary>True only if every input passed (a NaN error never passes).</summary>
    public bool Passed => Inputs.All(i => i.Passed);

    /// <summary>The largest relative error over the inputs (NaN if any is NaN).</summary>
    public double WorstRelativeError =>
        Inputs.Count == 0 ? 0 : Inputs.Any(i => double.IsNaN(i.RelativeError)) ? double.NaN : Inputs.Max(i => i.RelativeError);

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append($"gradcheck '{Name}': {(Passed ? "passed" : "FAILED")} (tolerance {Tolerance:G3})");
        foreach (var r in Inputs)
        {
            sb.Append($"\n  input {r.Index} {Tensor.FormatShape(r.Shape)}: rel error {r.RelativeError:G3} over {r.Probes} probes, " +
                      $"max |diff| {r.MaxAbsDifference:G3} at element {r.WorstElement} " +
                      $"(analytic {r.AnalyticAtWorst:G6}, numeric {r.NumericAtWorst:G6}){(r.Passed ? "" : "  <-- FAIL")}");
        }
        return sb.ToString();
    }
}

/// <summary>Thrown by <see cref="GradCheck.Check"/> when autograd and finite differences disagree.</summary>
public sealed class GradCheckException(GradCheckReport report) : Exception(report.ToString())
{
    public GradCheckReport Report { get; } = report;
}

/// <summary>
/// Compares the gradients that autograd computes with central finite differences.
/// The scalar objective is L = Σₖ Σ outₖ ⊙ rₖ with fixed random rₖ (so every output element, and every
/// mix of them, is exercised instead of just their sum). Autograd's dL/dx comes from
/// outₖ.Backward(rₖ); the numeric one is (L(x + h·eᵢ) − L(x − h·eᵢ)) / (2h) with L accumulated in double
/// from the float32 outputs and h the step float32 actually took.
/// </summary>
public static unsafe class GradCheck
{
    /// <summary>Runs the check and throws <see cref="GradCheckException"/> (with the report) if it fails.</summary>
    public static GradCheckReport Check(Func<Tensor[], Tensor> function, Tensor[] inputs, GradCheckOptions? options = null, string name = "function")
    {
        var report = Run(function, inputs, options, name);
        if (!report.Passed) throw new GradCheckException(report);
        return report;
    }

    /// <summary>Multi-output form of <see cref="Check(Func{Tensor[], Tensor}, Tensor[], GradCheckOptions?, string)"/>.</summary>
    public static GradCheckReport Check(Func<Tensor[], Tensor[]> function, Tensor[] inputs, GradCheckOptions? options = null, string name = "function")
    {
        var report = Run(function, inputs, options, name);
        if (!report.Passed) throw new GradCheckException(report);
        return report;
    }

    /// <summary>Runs the check and returns the report without throwing.</summary>
    public static GradCheckReport Run(Func<Tensor[], Tensor> function, Tensor[] inputs, GradCheckOptions? options = null, string name = "function") =>
        Run(x => [function(x)], inputs, options, name);

    /// <summary>
    /// Runs the check for a function with several outputs (float32 outputs enter L; integer outputs, such as
    /// top-k indices, are ignored). The inputs are not modified: the check works on private copies.
    /// </summary>
    public static GradCheckReport Run(Func<Tensor[], Tensor[]> function, Tensor[] inputs, GradCheckOptions? options = null, string name = "function")
    {
        options ??= new GradCheckOptions();
        foreach (var x in inputs)
            if (x.DType != DType.Float32)
                throw new ArgumentException($"gradcheck '{name}': inputs must be float32 (pass index tensors through the closure), got {x.DType} {Tensor.FormatShape(x.Shape)}");

        // Private contiguous leaves: perturbing them in place must not touch the caller's tensors, and their
        // .Grad must start empty. They belong to no scope, so the try/finally below is their only owner.
        var leaves = new Tensor[inputs.Length];
        try
        {
            using (TensorScope.Suspend())
            using (GradMode.Disable())
                for (int i = 0; i < inputs.Length; i++)
                    leaves[i] = inputs[i].ContiguousCopyNoGrad();
            foreach (var leaf in leaves) leaf.RequiresGrad_();

            var projections = MakeProjections(function, leaves, options, name);
            var analytic = AnalyticGradients(function, leaves, projections, name);

            var sampler = new Generator(options.Seed ^ 0x9E37_79B9UL);
            var results = new List<GradCheckInputResult>();
            for (int i = 0; i < leaves.Length; i++)
            {
                var probes = ChooseProbes(leaves[i].Numel, options.MaxProbesPerInput, sampler);
                var numeric = new double[probes.Length];
                float* p = leaves[i].Data;
                for (int j = 0; j < probes.Length; j++)
                {
                    long e = probes[j];
                    float original = p[e];
                    float up = original + options.Epsilon, down = original - options.Epsilon;
                    // The step float32 really took (rounding makes it differ from Epsilon by up to an ulp).
                    double h = (double)up - down;
                    p[e] = up;
                    var fPlus = Evaluate(function, leaves, projections);
                    p[e] = down;
                    var fMinus = Evaluate(function, leaves, projections);
                    p[e] = original;
                    numeric[j] = Difference(fPlus, fMinus, projections) / h;
                }
                results.Add(Compare(i, leaves[i].Shape.ToArray(), probes, analytic[i], numeric, options));
            }
            return new GradCheckReport(name, options.Tolerance, results);
        }
        finally
        {
            foreach (var leaf in leaves) leaf?.Dispose();
        }
    }

    // One r per float output, drawn once so that the analytic and every numeric evaluation use the same L.
    private static float[]?[] MakeProjections(Func<Tensor[], Tensor[]> function, Tensor[] leaves, GradCheckOptions options, string name)
    {
        var rng = new Generator(options.Seed);
        using var scope = new TensorScope();
        using var noGrad = GradMode.Disable();
        var outs = function(leaves);
        if (outs.Length == 0) throw new ArgumentException($"gradcheck '{name}': the function returned no outputs");
        var r = new float[]?[outs.Length];
        for (int k = 0; k < outs.Length; k++)
        {
            if (outs[k].DType != DType.Float32) continue;
            var values = new float[outs[k].Numel];
            // Uniform in ±[0.5, 1.5): no projection weight near zero, so no output element is silently ignored.
            for (int j = 0; j < values.Length; j++)
            {
                double u = rng.NextDouble();
                values[j] = (float)((u < 0.5 ? -1 : 1) * (0.5 + 2 * Math.Abs(u - 0.5)));
            }
            r[k] = values;
        }
        if (r.All(x => x == null)) throw new ArgumentException($"gradcheck '{name}': the function has no float32 output");
        return r;
    }

    private static double[][] AnalyticGradients(Func<Tensor[], Tensor[]> function, Tensor[] leaves, float[]?[] projections, string name)
    {
        using (var scope = new TensorScope())
        {
            var outs = function(leaves);
            if (outs.Length != projections.Length)
                throw new InvalidOperationException($"gradcheck '{name}': the function returned {outs.Length} outputs, then {projections.Length}");
            int last = Array.FindLastIndex(projections, r => r != null);
            for (int k = 0; k < outs.Length; k++)
            {
                var r = projections[k];
                if (r == null) continue;
                if (!outs[k].RequiresGrad)
                    throw new InvalidOperationException(
                        $"gradcheck '{name}': output {k} {Tensor.FormatShape(outs[k].Shape)} does not require grad: the op did not record a graph node");
                var upstream = Tensor.FromArray(r, outs[k].Shape, outs[k].Device);
                // Several outputs may share graph nodes; keep the graph until the last backward.
                outs[k].Backward(upstream, retainGraph: k != last);
            }
        }
        var grads = new double[leaves.Length][];
        for (int i = 0; i < leaves.Length; i++)
        {
            // An input the outputs do not depend on has a zero gradient, which the numeric side must confirm.
            var g = leaves[i].Grad?.ToArray() ?? new float[leaves[i].Numel];
            grads[i] = Array.ConvertAll(g, v => (double)v);
            leaves[i].ZeroGrad();
        }
        return grads;
    }

    // The float32 outputs, flattened; differences are taken per element before projecting (less cancellation).
    private static float[]?[] Evaluate(Func<Tensor[], Tensor[]> function, Tensor[] leaves, float[]?[] projections)
    {
        using var scope = new TensorScope();
        using var noGrad = GradMode.Disable();
        var outs = function(leaves);
        var values = new float[]?[projections.Length];
        for (int k = 0; k < projections.Length; k++)
            if (projections[k] != null) values[k] = outs[k].ToArray();
        return values;
    }

    private static double Difference(float[]?[] plus, float[]?[] minus, float[]?[] projections)
    {
        double s = 0;
        for (int k = 0; k < projections.Length; k++)
        {
            var r = projections[k];
            if (r == null) continue;
            var a = plus[k]!;
            var b = minus[k]!;
            for (int j = 0; j < r.Length; j++) s += ((double)a[j] - b[j]) * r[j];
        }
        return s;
    }

    private static long[] ChooseProbes(long numel, int maxProbes, Generator rng)
    {
        if (numel <= maxProbes) return Enumerable.Range(0, (int)numel).Select(i => (long)i).ToArray();
        var chosen = new SortedSet<long> { 0, numel - 1 };
        while (chosen.Count < maxProbes) chosen.Add((long)(rng.NextDouble() * numel));
        return chosen.ToArray();
    }

    private static GradCheckInputResult Compare(int index, int[] shape, long[] probes, double[] analyticAll, double[] numeric, GradCheckOptions options)
    {
        double diff2 = 0, a2 = 0, n2 = 0, maxAbs = -1;
        long worst = probes.Length > 0 ? probes[0] : 0;
        double aWorst = 0, nWorst = 0;
        bool finite = true;
        for (int j = 0; j < probes.Length; j++)
        {
            double a = analyticAll[probes[j]], n = numeric[j];
            if (!double.IsFinite(a) || !double.IsFinite(n))
            {
                finite = false;
                worst = probes[j];
                aWorst = a;
                nWorst = n;
                maxAbs = double.NaN;
                break;
            }
            double d = a - n;
            diff2 += d * d;
            a2 += a * a;
            n2 += n * n;
            if (Math.Abs(d) > maxAbs)
            {
                maxAbs = Math.Abs(d);
                worst = probes[j];
                aWorst = a;
                nWorst = n;
            }
        }
        double floor = options.AbsoluteFloor * Math.Sqrt(Math.Max(probes.Length, 1));
        double rel = finite ? Math.Sqrt(diff2) / Math.Max(Math.Max(Math.Sqrt(a2), Math.Sqrt(n2)), floor) : double.NaN;
        // Written as !(rel > tol) would let NaN through; this form rejects it.
        bool passed = rel <= options.Tolerance;
        return new GradCheckInputResult(index, shape, probes.Length, rel, Math.Max(maxAbs, 0), worst, aWorst, nWorst, passed);
    }
}
