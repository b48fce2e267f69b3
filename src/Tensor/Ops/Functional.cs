namespace NativeReasoner;

/// <summary>
/// Neural-network functions over tensors that are not naturally methods of one tensor: normalisation,
/// rotary embeddings, losses, attention, embedding lookup. Use as
/// <c>using F = NativeReasoner.Functional;</c> … <c>F.RmsNorm(x, w, 1e-6f)</c>.
/// Every function validates its inputs (errors name the function and the shapes), runs the device's
/// kernels on contiguous data and records one autograd node.
/// </summary>
public static partial class Functional
{
    /// <summary>Throws unless t is float32 and on the device of the first operand.</summary>
    private static void RequireFloatOn(Tensor t, Tensor like, string op, string what)
    {
        if (t.DType != Kernels.DType.Float32)
            throw new ArgumentException($"{op}: {what} must be float32, got {t.DType} of shape {Tensor.FormatShape(t.Shape)}");
        like.SameDevice(t, op);
    }

    /// <summary>t when keep, else null after disposing t (a gradient computed for an input that needs none).</summary>
    private static Tensor? KeepIf(bool keep, Tensor t)
    {
        if (keep) return t;
        t.Dispose();
        return null;
    }

    /// <summary>Product of shape[from..to) as an int (kernel sizes are ints).</summary>
    private static int Product(ReadOnlySpan<int> shape, int from, int to)
    {
        long p = 1;
        for (int i = from; i < to; i++) p *= shape[i];
        return checked((int)p);
    }
}
