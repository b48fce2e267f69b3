using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// Implicitly grouped kernels for indexing, rotary embedding and optimizer steps: one thread per element.
public sealed unsafe partial class IlgpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>? _rope;
    private Action<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>? _indexSelect, _indexAdd;
    private Action<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>? _gather, _scatterAdd;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWArgs>? _adamw;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, SgdArgs>? _sgd;

    // ---------------------------------------------------------------- rope

    public void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse)
    {
        if ((D & 1) != 0) throw new ArgumentException("D must be even", nameof(D));
        long pairs = (long)outer * T * mid * (D / 2);
        if (pairs == 0) return;
        lock (_backend.Sync)
            (_rope ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(RopeKernel))(
                Extent(pairs), F(x), F(cos), F(sin), F(y), T, mid, D / 2, inverse ? 1 : 0);
    }

    /// <summary>One thread per pair (x[2i], x[2i+1]) of x: [outer, T, mid, D]; cos, sin: [T, D/2]. y may alias x.</summary>
    private static void RopeKernel(Index1D p, ArrayView<float> x, ArrayView<float> cos, ArrayView<float> sin, ArrayView<float> y,
        int T, int mid, int half, int inverse)
    {
        int i = p % half;
        long rowIndex = p / half;               // (o·T + t)·mid + m
        int t = (int)(rowIndex / mid % T);
        float c = cos[(long)t * half + i], s = sin[(long)t * half + i];
        if (inverse != 0) s = -s;
        long at = rowIndex * 2 * half + 2 * i;
        float x0 = x[at], x1 = x[at + 1];
        y[at] = x0 * c - x1 * s;
        y[at + 1] = x0 * s + x1 * c;
    }

    // ---------------------------------------------------------------- indexing

    public void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner)
    {
        long total = (long)outer * n * inner;
        if (total == 0) return;
        lock (_backend.Sync)
            (_indexSelect ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>(IndexSelectKernel))(
                Extent(total), F(x), L(idx), F(y), dimIn, n, inner);
    }

    /// <summary>y[o, j, i] = x[o, idx[j], i]; one thread per element of y: [outer, n, inner].</summary>
    private static void IndexSelectKernel(Index1D e, ArrayView<float> x, ArrayView<long> idx, ArrayView<float> y, int dimIn, int n, int inner)
    {
        int i = e % inner;
        long oj = e / inner;
        int j = (int)(oj % n);
        long o = oj / n;
        y[e] = x[(o * dimIn + idx[j]) * inner + i];
    }

    public void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner)
    {
        long total = (long)outer * n * inner;
        if (total == 0) return;
        lock (_backend.Sync)
            (_indexAdd ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>(IndexAddKernel))(
                Extent(total), F(src), L(idx), F(dst), n, dimDst, inner);
    }

    /// <summary>dst[o, idx[j], i] += src[o, j, i]: repeated indices collide, so the adds are atomic.</summary>
    private static void IndexAddKernel(Index1D e, ArrayView<float> src, ArrayView<long> idx, ArrayView<float> dst, int n, int dimDst, int inner)
    {
        int i = e % inner;
        long oj = e / inner;
        int j = (int)(oj % n);
        long o = oj / n;
        Atomic.Add(ref dst[(o * dimDst + idx[j]) * inner + i], src[e]);
    }

    public void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner)
    {
        long total = (long)outer * dimOut * inner;
        if (total == 0) return;
        lock (_backend.Sync)
            (_gather ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>(GatherKernel))(
                Extent(total), F(x), L(idx), F(y), dimIn, dimOut, inner);
    }

    /// <summary>y[o, j, i] = x[o, idx[o, j, i], i]; one thread per element of y: [outer, dimOut, inner].</summary>
    private static void GatherKernel(Index1D e, ArrayView<float> x, ArrayView<long> idx, ArrayView<float> y, int dimIn, int dimOut, int inner)
    {
        int i = e % inner;
        long o = e / inner / dimOut;
        y[e] = x[(o * dimIn + idx[e]) * inner + i];
    }

    public void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner)
    {
        long total = (long)outer * dimSrc * inner;
        if (total == 0) return;
        lock (_backend.Sync)
            (_scatterAdd ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int>(ScatterAddKernel))(
                Extent(total), F(src), L(idx), F(dst), dimSrc, dimDst, inner);
    }

    /// <summary>dst[o, idx[o, j, i], i] += src[o, j, i] (atomic: indices may repeat).</summary>
    private static void ScatterAddKernel(Index1D e, ArrayView<float> src, ArrayView<long> idx, ArrayView<float> dst, int dimSrc, int dimDst, int inner)
    {
        int i = e % inner;
        long o = e / inner / dimSrc;
        Atomic.Add(ref dst[(o * dimDst + idx[e]) * inner + i], src[e]);
    }

    // ---------------------------------------------------------------- optimizers

    /// <summary>Scalars of one AdamW step (a struct keeps the kernel's parameter list short).</summary>
    internal struct AdamWArgs
    {
        public float Lr, Beta1, Beta2, Eps, WeightDecay, Bias1, Bias2;
    }

    internal struct SgdArgs
    {
        public float Lr, Momentum, Dampening, WeightDecay;
        public int Nesterov, FirstStep;
    }

    public void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2,
        float eps, float weightDecay, float bias1, float bias2)
    {
        if (n == 0) return;
        var args = new AdamWArgs { Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay, Bias1 = bias1, Bias2 = bias2 };
        lock (_backend.Sync)
            (_adamw ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWArgs>(AdamWKernel))(
                Extent(n), F(p), F(g), F(m), F(v), args);
    }

    /// <summary>PyTorch AdamW: decoupled decay first, then the bias-corrected Adam update.</summary>
    private static void AdamWKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamWArgs a)
    {
        float pi = p[i], gi = g[i];
        pi -= a.Lr * a.WeightDecay * pi;
        float mi = a.Beta1 * m[i] + (1f - a.Beta1) * gi;
        float vi = a.Beta2 * v[i] + (1f - a.Beta2) * gi * gi;
        pi -= a.Lr * (mi / a.Bias1) / (MathF.Sqrt(vi / a.Bias2) + a.Eps);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
    }

    public void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening,
        float weightDecay, bool nesterov, bool firstStep)
    {
        if (n == 0) return;
        var args = new SgdArgs { Lr = lr, Momentum = momentum, Dampening = dampening, WeightDecay = weightDecay, Nesterov = nesterov ? 1 : 0, FirstStep = firstStep ? 1 : 0 };
        // Without momentum the buffer is never touched (it may not even exist): pass p in its place.
        var buf = momentum != 0 ? F(momentumBuffer) : F(p);
        lock (_backend.Sync)
            (_sgd ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, SgdArgs>(SgdKernel))(
                Extent(n), F(p), F(g), buf, args);
    }

    private static void SgdKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> buf, SgdArgs a)
    {
        float gi = g[i] + a.WeightDecay * p[i];
        float d = gi;
        if (a.Momentum != 0f)
        {
            float b = a.FirstStep != 0 ? gi : a.Momentum * buf[i] + (1f - a.Dampening) * gi;
            buf[i] = b;
            d = a.Nesterov != 0 ? gi + a.Momentum * b : b;
        }
        p[i] = p[i] - a.Lr * d;
    }
}
