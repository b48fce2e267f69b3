using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// The fused kernels and bf16 GEMM on ILGPU, written for correctness first: one thread per element (SwiGLU,
// the log-softmax-gather gradient, each output of the bf16 GEMM) or per row (the log-softmax-gather forward).
// Faster forms (group reductions per row, shared-memory tiles for the bf16 GEMM) are still to come.
public sealed unsafe partial class IlgpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _siluMul;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _siluMulBackward;
    private Action<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, int, float>? _lsmGather;
    private Action<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _lsmGatherBackward;
    private Action<Index1D, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, GemmArgs>? _gemmBf16;

    public void SiluMul(float* gate, float* up, float* y, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_siluMul ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(SiluMulKernel))(
                Extent(n), F(gate), F(up), F(y));
    }

    /// <summary>y = g·σ(g)·u; y may alias g or u (each thread reads its element before writing it).</summary>
    private static void SiluMulKernel(Index1D i, ArrayView<float> g, ArrayView<float> u, ArrayView<float> y)
    {
        float x = g[i];
        y[i] = x / (1f + MathF.Exp(-x)) * u[i];
    }

    public void SiluMulBackward(float* gate, float* up, float* dy, float* dgate, float* dup, long n)
    {
        if (n == 0) return;
        lock (_backend.Sync)
            (_siluMulBackward ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(SiluMulBackwardKernel))(
                Extent(n), F(gate), F(up), F(dy), F(dgate), F(dup));
    }

    private static void SiluMulBackwardKernel(Index1D i, ArrayView<float> g, ArrayView<float> u, ArrayView<float> dy,
        ArrayView<float> dg, ArrayView<float> du)
    {
        float x = g[i], ui = u[i], d = dy[i];
        float s = 1f / (1f + MathF.Exp(-x));
        dg[i] = d * ui * s * (1f + x * (1f - s));
        du[i] = d * x * s;
    }

    public void LogSoftmaxGather(float* logits, long* ids, float* logp, float* lse, int rows, int V, float invTemperature)
    {
        if (rows == 0) return;
        lock (_backend.Sync)
            (_lsmGather ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, int, float>(LogSoftmaxGatherKernel))(
                rows, F(logits), L(ids), F(logp), F(lse), V, invTemperature);
    }

    /// <summary>One thread per row: max, then Σ exp(z − max) in double, then the gathered log-probability.</summary>
    private static void LogSoftmaxGatherKernel(Index1D r, ArrayView<float> x, ArrayView<long> ids, ArrayView<float> logp,
        ArrayView<float> lse, int V, float invT)
    {
        long row = (long)r.X * V;
        float max = float.NegativeInfinity;
        bool nan = false;
        for (int c = 0; c < V; c++)
        {
            float z = x[row + c] * invT;
            nan |= float.IsNaN(z);
            max = z > max ? z : max;
        }
        float l;
        if (nan) l = float.NaN;
        else if (float.IsNegativeInfinity(max)) l = max;
        else
        {
            double sum = 0;
            for (int c = 0; c < V; c++) sum += MathF.Exp(x[row + c] * invT - max);
            l = max + (float)Math.Log(sum);
        }
        lse[r] = l;
        logp[r] = x[row + ids[r]] * invT - l;
    }

    public void LogSoftmaxGatherBackward(float* logits, long* ids, float* lse, float* dlogp, float* dlogits,
        int rows, int V, float invTemperature)
    {
        long n = (long)rows * V;
        if (n == 0) return;
        lock (_backend.Sync)
            (_lsmGatherBackward ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(LogSoftmaxGatherBackwardKernel))(
                Extent(n), F(logits), L(ids), F(lse), F(dlogp), F(dlogits), V, invTemperature);
    }

    /// <summary>One thread per logit: invT·dlogp·([c = id] − exp(z − lse)).</summary>
    private static void LogSoftmaxGatherBackwardKernel(Index1D e, ArrayView<float> x, ArrayView<long> ids, ArrayView<float> lse,
        ArrayView<float> dlogp, ArrayView<float> dx, int V, float invT)
    {
        long r = e / V;
        int c = (int)(e - r * V);
        float p = MathF.Exp(x[e] * invT - lse[r]);
        dx[e] = invT * dlogp[r] * ((ids[r] == c ? 1f : 0f) - p);
    }

    public void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        ushort* A, int lda, long strideA, ushort* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC)
    {
        long n = (long)batch * M * N;
        if (n == 0) return;
        var args = new GemmArgs
        {
            Batch = batch, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, M = M, N = N, K = K,
            Lda = lda, Ldb = ldb, Ldc = ldc, StrideA = strideA, StrideB = strideB, StrideC = strideC,
            Alpha = alpha, Beta = beta,
        };
        lock (_backend.Sync)
        {
            // K = 0 never reads A or B: hand over views of C's buffer instead of possibly empty operands.
            var a = K == 0 ? U((ushort*)C) : U(A);
            var b = K == 0 ? U((ushort*)C) : U(B);
            (_gemmBf16 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, GemmArgs>(GemmBf16Kernel))(
                Extent(n), a, b, F(C), args);
        }
    }

    /// <summary>One thread per output: a float-accumulated dot product of widened bf16 values.</summary>
    private static void GemmBf16Kernel(Index1D e, ArrayView<ushort> A, ArrayView<ushort> B, ArrayView<float> C, GemmArgs g)
    {
        long mn = (long)g.M * g.N;
        long bi = e / mn;
        int rest = (int)(e - bi * mn);
        int i = rest / g.N, j = rest - i * g.N;
        long aBase = bi * g.StrideA, bBase = bi * g.StrideB;
        float sum = 0f;
        for (int p = 0; p < g.K; p++)
        {
            ushort av = g.TransA == 0 ? A[aBase + (long)i * g.Lda + p] : A[aBase + (long)p * g.Lda + i];
            ushort bv = g.TransB == 0 ? B[bBase + (long)p * g.Ldb + j] : B[bBase + (long)j * g.Ldb + p];
            sum += Interop.IntAsFloat((uint)av << 16) * Interop.IntAsFloat((uint)bv << 16);
        }
        long at = bi * g.StrideC + (long)i * g.Ldc + j;
        C[at] = g.Beta == 0f ? g.Alpha * sum : g.Alpha * sum + g.Beta * C[at];
    }
}
