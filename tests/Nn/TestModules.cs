using NativeReasoner.Nn;

namespace NativeReasoner.Tests.Nn;

/// <summary>Small module trees shared by the nn and optim tests.</summary>
internal sealed class TinyBlock : Module
{
    public Linear Q { get; }
    public Linear Out { get; }
    public Tensor Scale { get; }

    public TinyBlock(Generator gen, Device? device = null)
    {
        Q = RegisterModule("q", new Linear(4, 4, bias: true, gen, device));
        Out = RegisterModule("out", new Linear(4, 2, bias: false, gen, device));
        Scale = RegisterBuffer("scale", Tensor.Full([2], 0.5f, device));
    }

    public override Tensor Forward(Tensor x)
    {
        using var h = Q.Forward(x);
        using var o = Out.Forward(h);
        return o.Mul(Scale);
    }
}

internal sealed class TinyModel : Module
{
    public Parameter Emb { get; }
    public ModuleList<TinyBlock> Layers { get; }

    public TinyModel(ulong seed, int layers = 2, Device? device = null)
    {
        var gen = new Generator(seed);
        using (var e = Tensor.Randn([3, 4], gen, device: device))
            Emb = RegisterParameter("emb", new Parameter(e));
        Layers = RegisterModule("layers", new ModuleList<TinyBlock>());
        for (int i = 0; i < layers; i++) Layers.Add(new TinyBlock(gen, device));
    }

    /// <summary>Exposes the protected registration helpers to tests.</summary>
    public Parameter Register(string name, Parameter p) => RegisterParameter(name, p);
    public Tensor Buffer(string name, Tensor t) => RegisterBuffer(name, t);
    public T Child<T>(string name, T m) where T : Module => RegisterModule(name, m);
}

internal static class TestDevices
{
    /// <summary>Both host backends: reference (scalar oracle) and cpu (SIMD).</summary>
    public static Xunit.TheoryData<string> All => new() { "reference", "cpu" };

    public static void AssertClose(float[] expected, float[] actual, double atol = 1e-5, double rtol = 1e-4, string what = "")
    {
        Xunit.Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)expected[i] - actual[i]);
            if (diff > atol + rtol * Math.Abs(expected[i]))
                Xunit.Assert.Fail($"{what}[{i}]: expected {expected[i]:G9}, got {actual[i]:G9} (diff {diff:G3})");
        }
    }

    public static void AssertClose(double[] expected, float[] actual, double atol = 1e-5, double rtol = 1e-4, string what = "") =>
        AssertClose(expected.Select(v => (float)v).ToArray(), actual, atol, rtol, what);
}
