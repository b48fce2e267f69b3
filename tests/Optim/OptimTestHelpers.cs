using NativeReasoner.Nn;

namespace NativeReasoner.Tests.Optim;

internal static class OptimTestHelpers
{
    public static Parameter NewParameter(float[] values, Device device, params int[] shape)
    {
        using var t = Tensor.FromArray(values, shape, device);
        return new Parameter(t);
    }

    /// <summary>Sets p's gradient to a new tensor owned by p (outside scopes, as backward would).</summary>
    public static void SetGrad(Parameter p, float[] values)
    {
        using (TensorScope.Suspend())
            p.Grad = Tensor.FromArray(values, p.Shape, p.Device);
    }

    /// <summary>Deterministic pseudo-random values in [−scale, scale).</summary>
    public static float[] Values(int n, int seed, float scale = 1f)
    {
        var gen = new Generator((ulong)seed);
        var v = new float[n];
        gen.FillUniform(v, -scale, scale);
        return v;
    }
}
