using NativeReasoner.Kernels;

namespace NativeReasoner.Tests.Verification;

/// <summary>Error measures and host-side helpers shared by the verification tests.</summary>
internal static class VerificationUtil
{
    /// <summary>Tolerance for ops whose every output element is one rounding of one formula (or a copy).</summary>
    public const double ElementwiseTolerance = 1e-5;

    /// <summary>Tolerance for ops that accumulate (reductions, matmul, softmax, norms, attention, losses).</summary>
    public const double AccumulatingTolerance = 1e-4;

    /// <summary>
    /// ‖actual − expected‖₂ / ‖expected‖₂ in double (absolute ‖actual − expected‖₂ when expected is all zeros).
    /// Equal infinities count as equal; any NaN, or an infinity that is not matched, gives NaN so that the
    /// caller's "error ≤ tolerance" check fails.
    /// </summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length) return double.NaN;
        double diff2 = 0, ref2 = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            float a = actual[i], e = expected[i];
            if (float.IsNaN(a) || float.IsNaN(e)) return double.NaN;
            if (float.IsInfinity(a) || float.IsInfinity(e))
            {
                if (a != e) return double.NaN;
                continue;
            }
            double d = (double)a - e;
            diff2 += d * d;
            ref2 += (double)e * e;
        }
        return ref2 == 0 ? Math.Sqrt(diff2) : Math.Sqrt(diff2 / ref2);
    }

    /// <summary>True if err is a number no larger than tol (NaN never passes).</summary>
    public static bool Within(double err, double tol) => err <= tol;

    /// <summary>Index and values of the element with the largest absolute difference (for failure messages).</summary>
    public static string WorstElement(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length) return $"length {actual.Length} vs {expected.Length}";
        int worst = -1;
        double max = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (double.IsNaN(d)) { worst = i; break; }
            if (d > max) { max = d; worst = i; }
        }
        return worst < 0 ? "empty" : $"element {worst}: {actual[worst]:G9} vs {expected[worst]:G9}";
    }

    public static string Shape(ReadOnlySpan<int> shape) => Tensor.FormatShape(shape);

    /// <summary>A stable 64-bit hash of a string (FNV-1a): per-case seeds that do not change between runs.</summary>
    public static ulong StableHash(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        return h;
    }

    /// <summary>Host copy of a tensor: float values or int64 values, with its shape.</summary>
    public static HostTensor ToHost(Tensor t) => t.DType switch
    {
        DType.Float32 or DType.BFloat16 or DType.Float16 => new HostTensor(t.Shape.ToArray(), t.ToArray(), null),
        _ => new HostTensor(t.Shape.ToArray(), null, t.ToInt64Array()),
    };
}

/// <summary>A tensor copied to managed memory (exactly one of Floats / Longs is set).</summary>
internal sealed record HostTensor(int[] Shape, float[]? Floats, long[]? Longs)
{
    public bool IsFloat => Floats != null;

    public long Numel => Floats?.Length ?? Longs!.Length;

    /// <summary>A new tensor on the device with these values.</summary>
    public Tensor ToTensor(Device device) => Floats != null
        ? Tensor.FromArray(Floats.AsSpan(), Shape, device)
        : Tensor.FromArray(Longs.AsSpan(), Shape, device);
}
