using NativeReasoner.Kernels;

namespace NativeReasoner;

// Elementwise ops: unary functions and broadcasting binary arithmetic, with their gradients.
public unsafe partial class Tensor
{
    // ------------------------------------------------------------------ unary

    private Tensor UnaryOpRecorded(UnaryOp op, string name, float alpha = 0f)
    {
        RequireFloat(name);
        var x = ContiguousNoGrad();
        var y = Empty(Shape, DType.Float32, Device);
        Device.Kernels.Unary(op, x.Data, y.Data, Numel, alpha);
        var result = Record(y, name, [this], g =>
        {
            using var gc = g.ContiguousNoGrad();
            var dx = Empty(x.Shape, DType.Float32, x.Device);
            x.Device.Kernels.UnaryBackward(op, x.Data, y.Data, gc.Data, dx.Data, x.Numel, alpha);
            return [dx];
        }, x);
        x.Dispose(); // freed now, or when the graph node that saved it is released
        return result;
    }

    public Tensor Neg() => UnaryOpRecorded(UnaryOp.Neg, "neg");
    public Tensor Exp() => UnaryOpRecorded(UnaryOp.Exp, "exp");
    public Tensor Log() => UnaryOpRecorded(UnaryOp.Log, "log");
    public Tensor Sqrt() => UnaryOpRecorded(UnaryOp.Sqrt, "sqrt");
    public Tensor Rsqrt() => UnaryOpRecorded(UnaryOp.Rsqrt, "rsqrt");
    public Tensor Pow(float exponent) => UnaryOpRecorded(UnaryOp.Pow, "pow", exponent);
    public Tensor Silu() => UnaryOpRecorded(UnaryOp.Silu, "silu");
    public Tensor Sigmoid() => UnaryOpRecorded(UnaryOp.Sigmoid, "sigmoid");
    public Tensor Tanh() => UnaryOpRecorded(UnaryOp.Tanh, "tanh");
    public Tensor Square() => UnaryOpRecorded(UnaryOp.Square, "square");
    public Tensor Relu() => UnaryOpRecorded(UnaryOp.Relu, "relu");
    public Tensor Abs() => UnaryOpRecorded(UnaryOp.Abs, "abs");
    public Tensor Mul(float s) => UnaryOpRecorded(UnaryOp.Scale, "mul_scalar", s);
    public Tensor Add(float s) => UnaryOpRecorded(UnaryOp.AddScalar, "add_scalar", s);
    public Tensor Sub(float s) => Add(-s);
    public Tensor Div(float s) => Mul(1f / s);

    // ------------------------------------------------------------------ binary

    public Tensor Add(Tensor other) => BinaryOpRecorded(BinaryOp.Add, other, "add");
    public Tensor Sub(Tensor other) => BinaryOpRecorded(BinaryOp.Sub, other, "sub");
    public Tensor Mul(Tensor other) => BinaryOpRecorded(BinaryOp.Mul, other, "mul");
    public Tensor Div(Tensor other) => BinaryOpRecorded(BinaryOp.Div, other, "div");

    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    public static Tensor operator -(Tensor a) => a.Neg();
    public static Tensor operator +(Tensor a, float s) => a.Add(s);
    public static Tensor operator +(float s, Tensor a) => a.Add(s);
    public static Tensor operator -(Tensor a, float s) => a.Add(-s);
    public static Tensor operator -(float s, Tensor a)
    {
        using var n = a.Neg();
        return n.Add(s);
    }
    public static Tensor operator *(Tensor a, float s) => a.Mul(s);
    public static Tensor operator *(float s, Tensor a) => a.Mul(s);
    public static Tensor operator /(Tensor a, float s) => a.Mul(1f / s);

    /// <summary>The shape two shapes broadcast to (NumPy rules), or an error naming the op and both shapes.</summary>
    public static int[] BroadcastShapes(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string op)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"{op}: shapes {FormatShape(a)} and {FormatShape(b)} do not broadcast (axis {i}: {da} vs {db})");
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    private Tensor BinaryOpRecorded(BinaryOp op, Tensor other, string name)
    {
        RequireFloat(name);
        other.RequireFloat(name);
        SameDevice(other, name);
        var shape = BroadcastShapes(Shape, other.Shape, name);
        var c = Empty(shape, DType.Float32, Device);
        using (var av = BroadcastViewNoGrad(shape, name))
        using (var bv = other.BroadcastViewNoGrad(shape, name))
            Device.Kernels.Binary(op, av.Data, av.Strides, bv.Data, bv.Strides, c.Data, shape);
        if (!NeedsGrad(this) && !NeedsGrad(other)) return c;

        var a = this;
        var b = other;
        var aShape = _shape.ToArray();
        var bShape = other._shape.ToArray();
        return Record(c, name, [a, b], g => op switch
        {
            BinaryOp.Add => [a.RequiresGrad ? g.SumToShape(aShape) : null, b.RequiresGrad ? g.SumToShape(bShape) : null],
            BinaryOp.Sub => [a.RequiresGrad ? g.SumToShape(aShape) : null, b.RequiresGrad ? NegSumTo(g, bShape) : null],
            BinaryOp.Mul => [a.RequiresGrad ? ProductSumTo(g, b, aShape) : null, b.RequiresGrad ? ProductSumTo(g, a, bShape) : null],
            BinaryOp.Div => [a.RequiresGrad ? QuotientSumTo(g, b, aShape) : null, b.RequiresGrad ? DivisorGrad(g, c, b, bShape) : null],
            _ => throw new NotSupportedException($"no gradient for {op}"),
        });
    }

    private static Tensor NegSumTo(Tensor g, int[] shape)
    {
        using var n = g.Neg();
        return n.SumToShape(shape);
    }

    private static Tensor ProductSumTo(Tensor g, Tensor factor, int[] shape)
    {
        using var p = g.Mul(factor);
        return p.SumToShape(shape);
    }

    private static Tensor QuotientSumTo(Tensor g, Tensor divisor, int[] shape)
    {
        using var q = g.Div(divisor);
        return q.SumToShape(shape);
    }

    // d(a/b)/db = −a/b² = −c/b
    private static Tensor DivisorGrad(Tensor g, Tensor c, Tensor b, int[] shape)
    {
        using var gc = g.Mul(c);
        using var q = gc.Div(b);
        using var n = q.Neg();
        return n.SumToShape(shape);
    }

    /// <summary>
    /// Sums a broadcast result back down to <paramref name="shape"/> (the gradient of broadcasting):
    /// leading axes are summed away, axes of size 1 in the target are summed with keepdim.
    /// </summary>
    public Tensor SumToShape(ReadOnlySpan<int> shape)
    {
        if (Shape.SequenceEqual(shape)) return Alias();
        var target = shape.ToArray();
        int lead = Rank - target.Length;
        if (lead < 0) throw new ArgumentException($"sum_to_shape: cannot sum {FormatShape(Shape)} to the larger rank {FormatShape(shape)}");
        var targetStrides = ContiguousStrides(target);
        var dstStrides = new long[Rank];
        for (int i = 0; i < Rank; i++)
        {
            if (i < lead) { dstStrides[i] = 0; continue; }
            int t = target[i - lead];
            if (t == _shape[i]) dstStrides[i] = targetStrides[i - lead];
            else if (t == 1) dstStrides[i] = 0;
            else throw new ArgumentException($"sum_to_shape: cannot sum {FormatShape(Shape)} to {FormatShape(shape)} (axis {i})");
        }
        var result = Zeros(target, DType.Float32, Device);
        using (var src = ContiguousNoGrad())
            Device.Kernels.AccumulateStrided(src.Data, Shape, result.Data, dstStrides);
        var inShape = _shape.ToArray();
        return Record(result, "sum_to_shape", [this], g =>
        {
            using var e = g.BroadcastViewNoGrad(inShape, "sum_to_shape backward");
            return [e.ContiguousCopyNoGrad()];
        });
    }

    /// <summary>this += other (broadcast to this shape), in place; never recorded.</summary>
    public Tensor AddInPlace_(Tensor other)
    {
        CheckInPlace("add_");
        RequireFloat("add_");
        SameDevice(other, "add_");
        if (!IsContiguous) throw new InvalidOperationException($"add_: tensor{NameSuffix} must be contiguous");
        using var b = other.BroadcastViewNoGrad(Shape, "add_");
        Device.Kernels.Binary(BinaryOp.Add, Data, Strides, b.Data, b.Strides, Data, Shape);
        return this;
    }

    /// <summary>this *= s, in place; never recorded.</summary>
    public Tensor MulInPlace_(float s)
    {
        CheckInPlace("mul_");
        RequireFloat("mul_");
        if (!IsContiguous) throw new InvalidOperationException($"mul_: tensor{NameSuffix} must be contiguous");
        Device.Kernels.Unary(UnaryOp.Scale, Data, Data, Numel, s);
        return this;
    }

    /// <summary>Sets every element to value, in place; never recorded.</summary>
    public Tensor Fill_(float value)
    {
        CheckInPlace("fill_");
        RequireFloat("fill_");
        if (!IsContiguous) throw new InvalidOperationException($"fill_: tensor{NameSuffix} must be contiguous");
        Device.Kernels.Fill(Data, Numel, value);
        return this;
    }

    // ------------------------------------------------------------------ selection

    /// <summary>
    /// cond ≠ 0 ? a : b elementwise, broadcasting all three (cond is a float 0/1 mask, not differentiated).
    /// </summary>
    public static Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        cond.RequireFloat("where (condition)");
        a.RequireFloat("where");
        b.RequireFloat("where");
        a.SameDevice(b, "where");
        a.SameDevice(cond, "where");
        var shape = BroadcastShapes(BroadcastShapes(cond.Shape, a.Shape, "where"), b.Shape, "where");
        var result = Empty(shape, DType.Float32, a.Device);
        using (var cv = cond.BroadcastViewNoGrad(shape, "where"))
        using (var av = a.BroadcastViewNoGrad(shape, "where"))
        using (var bv = b.BroadcastViewNoGrad(shape, "where"))
            a.Device.Kernels.Where(cv.Data, cv.Strides, av.Data, av.Strides, bv.Data, bv.Strides, result.Data, shape);
        if (!NeedsGrad(a) && !NeedsGrad(b)) return result;
        var aShape = a._shape.ToArray();
        var bShape = b._shape.ToArray();
        return Record(result, "where", [null, a, b], g =>
        {
            Tensor? ga = null, gb = null;
            using var zero = Scalar(0f, g.Device);
            if (a.RequiresGrad)
            {
                using var sel = Where(cond, g, zero);
                ga = sel.SumToShape(aShape);
            }
            if (b.RequiresGrad)
            {
                using var sel = Where(cond, zero, g);
                gb = sel.SumToShape(bShape);
            }
            return [null, ga, gb];
        }, cond);
    }

    /// <summary>Elements where mask ≠ 0 replaced by value (mask broadcasts to this shape).</summary>
    public Tensor MaskedFill(Tensor mask, float value)
    {
        using var v = Scalar(value, Device);
        var result = Where(mask, v, this);
        if (!result.Shape.SequenceEqual(Shape))
        {
            result.Dispose();
            throw new ArgumentException($"masked_fill: mask of shape {FormatShape(mask.Shape)} must broadcast to {FormatShape(Shape)}, not enlarge it");
        }
        return result;
    }

    internal void RequireFloat(string op)
    {
        if (DType != DType.Float32)
            throw new InvalidOperationException($"{op}: needs float32, tensor{NameSuffix} is {DType} (convert with To(DType.Float32))");
    }
}
