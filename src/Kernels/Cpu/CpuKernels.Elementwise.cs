// Source: PyTorch's broadcasting and strided-tensor semantics (elementwise ops, Tensor.copy_).
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <summary>Scratch length for ops that need an intermediate (silu, pow backward): fits on the stack.</summary>
    private const int TempChunk = 1024;

    private struct UnaryState
    {
        public float* X, Y, Dy, Dx;
        public UnaryOp Op;
        public float Alpha;
    }

    public void Unary(UnaryOp op, float* x, float* y, long n, float alpha)
    {
        var st = new UnaryState { X = x, Y = y, Op = op, Alpha = alpha };
        CpuParallel.For(n, ElementwiseMinChunk, &UnaryBody, &st);
    }

    private static void UnaryBody(void* state, long start, long end)
    {
        var st = (UnaryState*)state;
        for (long s = start; s < end; s += SpanChunk)
        {
            int len = (int)Math.Min(SpanChunk, end - s);
            var x = new ReadOnlySpan<float>(st->X + s, len);
            var y = new Span<float>(st->Y + s, len);
            switch (st->Op)
            {
                case UnaryOp.Neg: TensorPrimitives.Negate(x, y); break;
                case UnaryOp.Exp: TensorPrimitives.Exp(x, y); break;
                case UnaryOp.Log: TensorPrimitives.Log(x, y); break;
                case UnaryOp.Sqrt: TensorPrimitives.Sqrt(x, y); break;
                case UnaryOp.Rsqrt: TensorPrimitives.ReciprocalSqrt(x, y); break;
                case UnaryOp.Pow: TensorPrimitives.Pow(x, st->Alpha, y); break;
                case UnaryOp.Silu: Silu(st->X + s, st->Y + s, len); break;
                case UnaryOp.Sigmoid: TensorPrimitives.Sigmoid(x, y); break;
                case UnaryOp.Tanh: TensorPrimitives.Tanh(x, y); break;
                case UnaryOp.Scale: TensorPrimitives.Multiply(x, st->Alpha, y); break;
                case UnaryOp.AddScalar: TensorPrimitives.Add(x, st->Alpha, y); break;
                case UnaryOp.Square: TensorPrimitives.Multiply(x, x, y); break;
                case UnaryOp.Relu: TensorPrimitives.Max(x, 0f, y); break; // IEEE max: NaN propagates
                case UnaryOp.Abs: TensorPrimitives.Abs(x, y); break;
                default: throw new ArgumentOutOfRangeException(nameof(state), st->Op, null);
            }
        }
    }

    // y = x·σ(x). σ goes through a stack scratch rather than into y because y may alias x.
    private static void Silu(float* x, float* y, int n)
    {
        float* tmp = stackalloc float[TempChunk];
        for (int s = 0; s < n; s += TempChunk)
        {
            int len = Math.Min(TempChunk, n - s);
            var t = new Span<float>(tmp, len);
            TensorPrimitives.Sigmoid(new ReadOnlySpan<float>(x + s, len), t);
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(x + s, len), t, new Span<float>(y + s, len));
        }
    }

    public void UnaryBackward(UnaryOp op, float* x, float* y, float* dy, float* dx, long n, float alpha)
    {
        var st = new UnaryState { X = x, Y = y, Dy = dy, Dx = dx, Op = op, Alpha = alpha };
        CpuParallel.For(n, ElementwiseMinChunk, &UnaryBackwardBody, &st);
    }

    private static void UnaryBackwardBody(void* state, long start, long end)
    {
        var st = (UnaryState*)state;
        long n = end - start;
        float* x = st->X + start, y = st->Y + start, g = st->Dy + start, d = st->Dx + start;
        switch (st->Op)
        {
            case UnaryOp.Neg: Chunked(g, d, n, -1f, &NegateSpan); break;
            case UnaryOp.Exp: SimdMap.Map2(new MulOp(), y, g, d, n); break;
            case UnaryOp.Log: SimdMap.Map2(new DivOp(), g, x, d, n); break;
            case UnaryOp.Sqrt: SimdMap.Map2(new SqrtGrad(), y, g, d, n); break;
            case UnaryOp.Rsqrt: SimdMap.Map2(new RsqrtGrad(), y, g, d, n); break;
            case UnaryOp.Pow: PowGrad(x, g, d, n, st->Alpha); break;
            case UnaryOp.Silu: SiluGrad(x, g, d, n); break;
            case UnaryOp.Sigmoid: SimdMap.Map2(new SigmoidGrad(), y, g, d, n); break;
            case UnaryOp.Tanh: SimdMap.Map2(new TanhGrad(), y, g, d, n); break;
            case UnaryOp.Scale: Chunked(g, d, n, st->Alpha, &ScaleSpan); break;
            case UnaryOp.AddScalar:
                if (g != d) Buffer.MemoryCopy(g, d, n * sizeof(float), n * sizeof(float));
                break;
            case UnaryOp.Square: SimdMap.Map2(new SquareGrad(), x, g, d, n); break;
            case UnaryOp.Relu: SimdMap.Map2(new ReluGrad(), x, g, d, n); break;
            case UnaryOp.Abs: SimdMap.Map2(new AbsGrad(), x, g, d, n); break;
            default: throw new ArgumentOutOfRangeException(nameof(state), st->Op, null);
        }
    }

    private static void NegateSpan(ReadOnlySpan<float> x, Span<float> y, float _) => TensorPrimitives.Negate(x, y);
    private static void ScaleSpan(ReadOnlySpan<float> x, Span<float> y, float a) => TensorPrimitives.Multiply(x, a, y);

    private static void Chunked(float* x, float* y, long n, float a, delegate*<ReadOnlySpan<float>, Span<float>, float, void> f)
    {
        for (long s = 0; s < n; s += SpanChunk)
        {
            int len = (int)Math.Min(SpanChunk, n - s);
            f(new ReadOnlySpan<float>(x + s, len), new Span<float>(y + s, len), a);
        }
    }

    // dx = α·x^(α−1)·dy
    private static void PowGrad(float* x, float* g, float* d, long n, float alpha)
    {
        float* tmp = stackalloc float[TempChunk];
        for (long s = 0; s < n; s += TempChunk)
        {
            int len = (int)Math.Min(TempChunk, n - s);
            var t = new Span<float>(tmp, len);
            TensorPrimitives.Pow(new ReadOnlySpan<float>(x + s, len), alpha - 1f, t);
            TensorPrimitives.Multiply(t, alpha, t);
            TensorPrimitives.Multiply(t, new ReadOnlySpan<float>(g + s, len), new Span<float>(d + s, len));
        }
    }

    // dx = dy·σ(x)·(1 + x·(1 − σ(x)))
    private static void SiluGrad(float* x, float* g, float* d, long n)
    {
        float* tmp = stackalloc float[TempChunk];
        for (long s = 0; s < n; s += TempChunk)
        {
            int len = (int)Math.Min(TempChunk, n - s);
            TensorPrimitives.Sigmoid(new ReadOnlySpan<float>(x + s, len), new Span<float>(tmp, len));
            SimdMap.Map3(new SiluGradOp(), x + s, tmp, g + s, d + s, len);
        }
    }

    private struct MulOp : IMap2
    {
        public float Apply(float a, float b) => a * b;
        public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a * b;
        public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a * b;
    }

    private struct DivOp : IMap2
    {
        public float Apply(float a, float b) => a / b;
        public Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a / b;
        public Vector512<float> Apply(Vector512<float> a, Vector512<float> b) => a / b;
    }

    private struct SqrtGrad : IMap2 // (y, dy) → dy·0.5/y
    {
        public float Apply(float y, float g) => 0.5f * g / y;
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> g) => Vector256.Create(0.5f) * g / y;
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> g) => Vector512.Create(0.5f) * g / y;
    }

    private struct RsqrtGrad : IMap2 // (y, dy) → −0.5·y³·dy
    {
        public float Apply(float y, float g) => -0.5f * y * y * y * g;
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> g) => Vector256.Create(-0.5f) * y * y * y * g;
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> g) => Vector512.Create(-0.5f) * y * y * y * g;
    }

    private struct SigmoidGrad : IMap2 // (y, dy) → dy·y·(1 − y)
    {
        public float Apply(float y, float g) => g * y * (1f - y);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> g) => g * y * (Vector256<float>.One - y);
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> g) => g * y * (Vector512<float>.One - y);
    }

    private struct TanhGrad : IMap2 // (y, dy) → dy·(1 − y²)
    {
        public float Apply(float y, float g) => g * (1f - y * y);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> g) => g * (Vector256<float>.One - y * y);
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> g) => g * (Vector512<float>.One - y * y);
    }

    private struct SquareGrad : IMap2 // (x, dy) → 2x·dy
    {
        public float Apply(float x, float g) => 2f * x * g;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> g) => (x + x) * g;
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> g) => (x + x) * g;
    }

    private struct ReluGrad : IMap2 // (x, dy) → x > 0 ? dy : 0
    {
        public float Apply(float x, float g) => x > 0 ? g : 0f;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> g) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), g, Vector256<float>.Zero);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> g) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), g, Vector512<float>.Zero);
    }

    private struct AbsGrad : IMap2 // (x, dy) → sign(x)·dy, 0 at 0 (and NaN)
    {
        public float Apply(float x, float g) => x > 0 ? g : x < 0 ? -g : 0f;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> g) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), g, Vector256<float>.Zero)
            - Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), g, Vector256<float>.Zero);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> g) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), g, Vector512<float>.Zero)
            - Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), g, Vector512<float>.Zero);
    }

    private struct SiluGradOp : IMap3 // (x, σ(x), dy) → dy·σ·(1 + x·(1 − σ))
    {
        public float Apply(float x, float s, float g) => g * s * (1f + x * (1f - s));
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> s, Vector256<float> g) =>
            g * s * (Vector256<float>.One + x * (Vector256<float>.One - s));
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> s, Vector512<float> g) =>
            g * s * (Vector512<float>.One + x * (Vector512<float>.One - s));
    }

    // ---------------------------------------------------------------- broadcasting binary / where / accumulate

    public void Binary(BinaryOp op, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides,
        float* c, ReadOnlySpan<int> shape)
    {
        StridedPlan plan = default;
        // operands: 0 = a, 1 = b, 2 = c (contiguous)
        if (!StridedPlan.Init(&plan, shape, 3, aStrides, bStrides, default, default, false, false, true, false)) return;
        plan.Base[0] = (long)a;
        plan.Base[1] = (long)b;
        plan.Base[2] = (long)c;
        plan.Op = (int)op;
        plan.Segment = &BinarySegment;
        StridedPlan.Run(&plan, ElementwiseMinChunk);
    }

    private static void BinarySegment(StridedPlan* p, long* off, int len)
    {
        float* a = (float*)p->Base[0] + off[0];
        float* b = (float*)p->Base[1] + off[1];
        float* c = (float*)p->Base[2] + off[2];
        long sa = p->InnerStride(0), sb = p->InnerStride(1);
        var op = (BinaryOp)p->Op;
        var cs = new Span<float>(c, len);
        if (sa == 1 && sb == 1)
        {
            var av = new ReadOnlySpan<float>(a, len);
            var bv = new ReadOnlySpan<float>(b, len);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(av, bv, cs); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(av, bv, cs); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(av, bv, cs); break;
                case BinaryOp.Div: TensorPrimitives.Divide(av, bv, cs); break;
                case BinaryOp.Maximum: TensorPrimitives.Max(av, bv, cs); break;
                case BinaryOp.Minimum: TensorPrimitives.Min(av, bv, cs); break;
                default: throw new ArgumentOutOfRangeException(nameof(p), op, null);
            }
        }
        else if (sa == 1 && sb == 0)
        {
            var av = new ReadOnlySpan<float>(a, len);
            float bs = *b;
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(av, bs, cs); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(av, bs, cs); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(av, bs, cs); break;
                case BinaryOp.Div: TensorPrimitives.Divide(av, bs, cs); break;
                case BinaryOp.Maximum: TensorPrimitives.Max(av, bs, cs); break;
                case BinaryOp.Minimum: TensorPrimitives.Min(av, bs, cs); break;
                default: throw new ArgumentOutOfRangeException(nameof(p), op, null);
            }
        }
        else if (sa == 0 && sb == 1)
        {
            var bv = new ReadOnlySpan<float>(b, len);
            float as_ = *a;
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(bv, as_, cs); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(as_, bv, cs); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(bv, as_, cs); break;
                case BinaryOp.Div: TensorPrimitives.Divide(as_, bv, cs); break;
                case BinaryOp.Maximum: TensorPrimitives.Max(bv, as_, cs); break;
                case BinaryOp.Minimum: TensorPrimitives.Min(bv, as_, cs); break;
                default: throw new ArgumentOutOfRangeException(nameof(p), op, null);
            }
        }
        else if (sa == 0 && sb == 0)
        {
            cs.Fill(Reference.ReferenceKernels.BinaryScalar(op, *a, *b));
        }
        else
        {
            // Strided inner axis (a transposed operand): scalar.
            for (int i = 0; i < len; i++)
                c[i] = Reference.ReferenceKernels.BinaryScalar(op, a[i * sa], b[i * sb]);
        }
    }

    public void Where(float* cond, ReadOnlySpan<long> condStrides, float* a, ReadOnlySpan<long> aStrides,
        float* b, ReadOnlySpan<long> bStrides, float* output, ReadOnlySpan<int> shape)
    {
        StridedPlan plan = default;
        // operands: 0 = cond, 1 = a, 2 = b, 3 = output (contiguous)
        if (!StridedPlan.Init(&plan, shape, 4, condStrides, aStrides, bStrides, default, false, false, false, true)) return;
        plan.Base[0] = (long)cond;
        plan.Base[1] = (long)a;
        plan.Base[2] = (long)b;
        plan.Base[3] = (long)output;
        plan.Segment = &WhereSegment;
        StridedPlan.Run(&plan, ElementwiseMinChunk);
    }

    private static void WhereSegment(StridedPlan* p, long* off, int len)
    {
        float* c = (float*)p->Base[0] + off[0];
        float* a = (float*)p->Base[1] + off[1];
        float* b = (float*)p->Base[2] + off[2];
        float* o = (float*)p->Base[3] + off[3];
        long sc = p->InnerStride(0), sa = p->InnerStride(1), sb = p->InnerStride(2);
        int i = 0;
        if ((sc | sa | sb) is 0 or 1)
        {
            // Every operand is contiguous (stride 1) or a broadcast scalar (stride 0) along the row.
            // cond == 0 picks b; NaN != 0 picks a.
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i <= len - 16; i += 16)
                {
                    var vc = sc == 0 ? Vector512.Create(*c) : Vector512.Load(c + i);
                    var va = sa == 0 ? Vector512.Create(*a) : Vector512.Load(a + i);
                    var vb = sb == 0 ? Vector512.Create(*b) : Vector512.Load(b + i);
                    Vector512.Store(Vector512.ConditionalSelect(Vector512.Equals(vc, Vector512<float>.Zero), vb, va), o + i);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                for (; i <= len - 8; i += 8)
                {
                    var vc = sc == 0 ? Vector256.Create(*c) : Vector256.Load(c + i);
                    var va = sa == 0 ? Vector256.Create(*a) : Vector256.Load(a + i);
                    var vb = sb == 0 ? Vector256.Create(*b) : Vector256.Load(b + i);
                    Vector256.Store(Vector256.ConditionalSelect(Vector256.Equals(vc, Vector256<float>.Zero), vb, va), o + i);
                }
            }
        }
        for (; i < len; i++) o[i] = c[i * sc] != 0 ? a[i * sa] : b[i * sb];
    }

    public void AccumulateStrided(float* src, ReadOnlySpan<int> shape, float* dst, ReadOnlySpan<long> dstStrides)
    {
        StridedPlan plan = default;
        // operands: 0 = src (contiguous), 1 = dst
        if (!StridedPlan.Init(&plan, shape, 2, default, dstStrides, default, default, true, false, false, false)) return;
        plan.Base[0] = (long)src;
        plan.Base[1] = (long)dst;
        plan.Segment = &AccumulateSegment;
        if (!StridedPlan.HasZeroStride(&plan, 1))
            StridedPlan.Run(&plan, ElementwiseMinChunk);       // one src element per dst element: any split is safe
        else if (plan.InnerStride(1) != 0)
            StridedPlan.RunColumnBlocks(&plan, ElementwiseMinChunk); // split by dst column: no two tasks share a dst element
        else
            StridedPlan.Run(&plan, long.MaxValue);             // reducing along the row itself: single-threaded
    }

    private static void AccumulateSegment(StridedPlan* p, long* off, int len)
    {
        float* s = (float*)p->Base[0] + off[0];
        float* d = (float*)p->Base[1] + off[1];
        long ss = p->InnerStride(0), ds = p->InnerStride(1);
        if (ss == 1 && ds == 1)
        {
            var dv = new Span<float>(d, len);
            TensorPrimitives.Add(dv, new ReadOnlySpan<float>(s, len), dv);
        }
        else if (ss == 1 && ds == 0)
        {
            *d += TensorPrimitives.Sum(new ReadOnlySpan<float>(s, len));
        }
        else
        {
            for (int i = 0; i < len; i++) d[i * ds] += s[i * ss];
        }
    }

    // ---------------------------------------------------------------- sum of squares

    private struct SumSqState
    {
        public float* X;
        public long N, PartLen;
        public double* Partials;
    }

    public double SumOfSquares(float* x, long n)
    {
        if (n <= 0) return 0;
        // Fixed partition into at most 64 parts (one partial each), summed in order: the result does not depend
        // on how the pool schedules the parts.
        long parts = Math.Clamp(n / (ElementwiseMinChunk * 2), 1, 64);
        double* partials = stackalloc double[(int)parts];
        var st = new SumSqState { X = x, N = n, PartLen = (n + parts - 1) / parts, Partials = partials };
        CpuParallel.For(parts, 1, &SumSqBody, &st);
        double total = 0;
        for (int i = 0; i < parts; i++) total += partials[i];
        return total;
    }

    private static void SumSqBody(void* state, long start, long end)
    {
        var st = (SumSqState*)state;
        for (long part = start; part < end; part++)
        {
            long s0 = part * st->PartLen, e0 = Math.Min(st->N, s0 + st->PartLen);
            double acc = 0;
            // Short float runs, accumulated in double so a long vector keeps its precision.
            for (long s = s0; s < e0; s += 4096)
                acc += TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(st->X + s, (int)Math.Min(4096, e0 - s)));
            st->Partials[part] = acc;
        }
    }
}
