namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void Unary(UnaryOp op, float* x, float* y, long n, float alpha)
    {
        for (long i = 0; i < n; i++) y[i] = (float)UnaryScalar(op, x[i], alpha);
    }

    internal static double UnaryScalar(UnaryOp op, double x, double alpha) => op switch
    {
        UnaryOp.Neg => -x,
        UnaryOp.Exp => Math.Exp(x),
        UnaryOp.Log => Math.Log(x),
        UnaryOp.Sqrt => Math.Sqrt(x),
        UnaryOp.Rsqrt => 1.0 / Math.Sqrt(x),
        UnaryOp.Pow => Math.Pow(x, alpha),
        UnaryOp.Silu => x / (1.0 + Math.Exp(-x)),
        UnaryOp.Sigmoid => 1.0 / (1.0 + Math.Exp(-x)),
        UnaryOp.Tanh => Math.Tanh(x),
        UnaryOp.Scale => alpha * x,
        UnaryOp.AddScalar => x + alpha,
        UnaryOp.Square => x * x,
        // NaN propagates (Math.Max does), as in PyTorch.
        UnaryOp.Relu => Math.Max(x, 0.0),
        UnaryOp.Abs => Math.Abs(x),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    public void UnaryBackward(UnaryOp op, float* x, float* y, float* dy, float* dx, long n, float alpha)
    {
        for (long i = 0; i < n; i++)
        {
            // Read everything before writing: dx may alias dy.
            double xi = x[i], yi = y[i], g = dy[i];
            double d = op switch
            {
                UnaryOp.Neg => -1.0,
                UnaryOp.Exp => yi,
                UnaryOp.Log => 1.0 / xi,
                UnaryOp.Sqrt => 0.5 / yi,
                UnaryOp.Rsqrt => -0.5 * yi * yi * yi, // d/dx x^-1/2 = -1/2 · x^-3/2 = -1/2 · y³
                UnaryOp.Pow => alpha * Math.Pow(xi, alpha - 1.0),
                UnaryOp.Silu => SiluGrad(xi),
                UnaryOp.Sigmoid => yi * (1.0 - yi),
                UnaryOp.Tanh => 1.0 - yi * yi,
                UnaryOp.Scale => alpha,
                UnaryOp.AddScalar => 1.0,
                UnaryOp.Square => 2.0 * xi,
                UnaryOp.Relu => xi > 0 ? 1.0 : 0.0,
                UnaryOp.Abs => xi > 0 ? 1.0 : xi < 0 ? -1.0 : 0.0,
                _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
            };
            dx[i] = (float)(g * d);
        }
    }

    // d/dx x·σ(x) = σ(x) · (1 + x · (1 − σ(x)))
    private static double SiluGrad(double x)
    {
        double s = 1.0 / (1.0 + Math.Exp(-x));
        return s * (1.0 + x * (1.0 - s));
    }

    internal static float BinaryScalar(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        // IEEE 754-2019 maximum/minimum: NaN propagates, +0 > −0.
        BinaryOp.Maximum => MathF.Max(a, b),
        BinaryOp.Minimum => MathF.Min(a, b),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    public void Binary(BinaryOp op, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides,
        float* c, ReadOnlySpan<int> shape)
    {
        CheckRank(shape, aStrides, bStrides);
        long total = ElementCount(shape);
        Span<int> index = stackalloc int[Math.Max(1, shape.Length)];
        for (long flat = 0; flat < total; flat++)
        {
            Unravel(flat, shape, index);
            c[flat] = BinaryScalar(op, a[Offset(index, aStrides, shape.Length)], b[Offset(index, bStrides, shape.Length)]);
        }
    }

    public void Where(float* cond, ReadOnlySpan<long> condStrides, float* a, ReadOnlySpan<long> aStrides,
        float* b, ReadOnlySpan<long> bStrides, float* output, ReadOnlySpan<int> shape)
    {
        CheckRank(shape, aStrides, bStrides);
        CheckRank(shape, condStrides, condStrides);
        long total = ElementCount(shape);
        Span<int> index = stackalloc int[Math.Max(1, shape.Length)];
        for (long flat = 0; flat < total; flat++)
        {
            Unravel(flat, shape, index);
            float cv = cond[Offset(index, condStrides, shape.Length)];
            output[flat] = cv != 0 ? a[Offset(index, aStrides, shape.Length)] : b[Offset(index, bStrides, shape.Length)];
        }
    }

    public void AccumulateStrided(float* src, ReadOnlySpan<int> shape, float* dst, ReadOnlySpan<long> dstStrides)
    {
        CheckRank(shape, dstStrides, dstStrides);
        long total = ElementCount(shape);
        if (total == 0) return;
        // Many src elements can land on one dst element: sum in double on a scratch copy of the dst extent,
        // then write back only the touched elements.
        long extent = 1;
        for (int a = 0; a < shape.Length; a++)
        {
            if (dstStrides[a] < 0) throw new ArgumentException("negative dst stride", nameof(dstStrides));
            extent += (shape[a] - 1) * dstStrides[a];
        }
        var acc = new double[extent];
        var touched = new bool[extent];
        for (long e = 0; e < extent; e++) acc[e] = dst[e];
        Span<int> index = stackalloc int[Math.Max(1, shape.Length)];
        for (long flat = 0; flat < total; flat++)
        {
            Unravel(flat, shape, index);
            long off = Offset(index, dstStrides, shape.Length);
            acc[off] += src[flat];
            touched[off] = true;
        }
        for (long e = 0; e < extent; e++)
            if (touched[e]) dst[e] = (float)acc[e];
    }

    public double SumOfSquares(float* x, long n)
    {
        double s = 0;
        for (long i = 0; i < n; i++) s += (double)x[i] * x[i];
        return s;
    }
}
