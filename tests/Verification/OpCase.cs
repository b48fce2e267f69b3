namespace NativeReasoner.Tests.Verification;

/// <summary>How one input of an op case is drawn.</summary>
internal sealed record InputSpec(string Name, int[] Shape, Func<Generator, int, float[]>? FloatGen, Func<Generator, int, long[]>? IntGen, bool Grad)
{
    public int Numel => Shape.Aggregate(1, (a, b) => a * b);

    public HostTensor Draw(Generator g) => FloatGen != null
        ? new HostTensor(Shape, FloatGen(g, Numel), null)
        : new HostTensor(Shape, null, IntGen!(g, Numel));

    // ---- generators. Inputs are chosen so finite differences and ops are well defined: no kinks or ties
    // within the finite-difference step, no log/sqrt of values near zero, no division by values near zero.

    /// <summary>N(0, scale²).</summary>
    public static InputSpec Normal(string name, int[] shape, float scale = 1f) =>
        new(name, shape, (g, n) => Fill(n, _ => scale * g.NextNormal()), null, true);

    /// <summary>Uniform in [0.2, 3): the domain of log, sqrt, rsqrt, fractional pow.</summary>
    public static InputSpec Positive(string name, int[] shape) =>
        new(name, shape, (g, n) => Fill(n, _ => (float)(0.2 + 2.8 * g.NextDouble())), null, true);

    /// <summary>sign(z)·(0.5 + |z|): divisors, and inputs of ops with a kink at 0 (relu, abs).</summary>
    public static InputSpec AwayFromZero(string name, int[] shape) =>
        new(name, shape, (g, n) => Fill(n, _ =>
        {
            float z = g.NextNormal();
            return MathF.CopySign(0.5f + MathF.Abs(z), z);
        }), null, true);

    /// <summary>
    /// Pairwise distinct values at least 0.01 apart, shuffled: max/min/top-k have a unique winner that a
    /// finite-difference step of 1e-3 cannot change.
    /// </summary>
    public static InputSpec Distinct(string name, int[] shape) =>
        new(name, shape, (g, n) =>
        {
            var v = Fill(n, i => (i - n / 2) * 0.01f);
            for (int i = n - 1; i > 0; i--)
            {
                int j = g.NextInt(i + 1);
                (v[i], v[j]) = (v[j], v[i]);
            }
            return v;
        }, null, true);

    /// <summary>A 0/1 float mask (not differentiated).</summary>
    public static InputSpec Mask(string name, int[] shape) =>
        new(name, shape, (g, n) => Fill(n, _ => g.NextDouble() < 0.5 ? 1f : 0f), null, false);

    /// <summary>Fixed float data (e.g. rope tables), not differentiated.</summary>
    public static InputSpec Constant(string name, int[] shape, Func<int, float> value) =>
        new(name, shape, (_, n) => Fill(n, value), null, false);

    /// <summary>int64 indices in [0, high), with at least one repeat when possible (gradients must accumulate).</summary>
    public static InputSpec Index(string name, int[] shape, int high) =>
        new(name, shape, null, (g, n) =>
        {
            var v = new long[n];
            for (int i = 0; i < n; i++) v[i] = g.NextInt(high);
            if (n >= 2 && high >= 1) v[n - 1] = v[0];
            return v;
        }, false);

    /// <summary>int64 indices chosen by the caller (e.g. targets with an ignore_index).</summary>
    public static InputSpec Ints(string name, int[] shape, Func<Generator, int, long> value) =>
        new(name, shape, null, (g, n) => Enumerable.Range(0, n).Select(i => value(g, i)).ToArray(), false);

    private static float[] Fill(int n, Func<int, float> f)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = f(i);
        return v;
    }
}

/// <summary>
/// One row of the op table: an op applied to inputs of given shapes. <see cref="Fn"/> receives every input in
/// <see cref="Inputs"/> order (float and index tensors on the device under test) and returns the outputs.
/// </summary>
internal sealed record OpCase(
    string Name,
    string Op,
    InputSpec[] Inputs,
    Func<Tensor[], Tensor[]> Fn,
    double Tolerance,
    bool Differentiable = true,
    float GradEps = 1e-3f,
    double GradTol = 1e-2,
    string? NoGradCheckReason = null)
{
    public override string ToString() => Name;

    /// <summary>Fresh inputs for this case: the seed comes from the case name, so a failure reproduces.</summary>
    public HostTensor[] DrawInputs()
    {
        var g = new Generator(VerificationUtil.StableHash(Name));
        return Inputs.Select(s => s.Draw(g)).ToArray();
    }
}
