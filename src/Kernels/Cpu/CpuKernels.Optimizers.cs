// Source: AdamW (arXiv:1711.05101) as torch.optim.AdamW; SGD with momentum/Nesterov as torch.optim.SGD.
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    private struct OptimizerState
    {
        public float* P, G, M, V;
        public float Lr, Beta1, Beta2, Eps, WeightDecay, Bias1, Bias2, Momentum, Dampening;
        public bool Nesterov, FirstStep;
    }

    public void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2,
        float eps, float weightDecay, float bias1, float bias2)
    {
        var st = new OptimizerState
        {
            P = p, G = g, M = m, V = v, Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay,
            Bias1 = bias1, Bias2 = bias2,
        };
        CpuParallel.For(n, ElementwiseMinChunk, &AdamWBody, &st);
    }

    private static void AdamWBody(void* state, long start, long end)
    {
        var st = (OptimizerState*)state;
        AdamWRange(st, st->P, st->G, st->M, st->V, start, end);
    }

    /// <summary>The AdamW update of elements [start, end) of one tensor (hyper-parameters from <paramref name="st"/>).</summary>
    private static void AdamWRange(OptimizerState* st, float* p, float* g, float* m, float* v, long start, long end)
    {
        float b1 = st->Beta1, b2 = st->Beta2, eps = st->Eps;
        float c1 = 1f - b1, c2 = 1f - b2;
        float decay = 1f - st->Lr * st->WeightDecay; // p − lr·wd·p
        float step = st->Lr / st->Bias1;              // lr · (m / bias1)
        float invBias2 = 1f / st->Bias2;
        long i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            var vb1 = Vector512.Create(b1); var vb2 = Vector512.Create(b2);
            var vc1 = Vector512.Create(c1); var vc2 = Vector512.Create(c2);
            var vdecay = Vector512.Create(decay); var vstep = Vector512.Create(step);
            var vib2 = Vector512.Create(invBias2); var veps = Vector512.Create(eps);
            for (; i <= end - 16; i += 16)
            {
                var gi = Vector512.Load(g + i);
                var mi = vb1 * Vector512.Load(m + i) + vc1 * gi;
                var vi = vb2 * Vector512.Load(v + i) + vc2 * gi * gi;
                var pi = Vector512.Load(p + i) * vdecay - vstep * mi / (Vector512.Sqrt(vi * vib2) + veps);
                Vector512.Store(mi, m + i);
                Vector512.Store(vi, v + i);
                Vector512.Store(pi, p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vb1 = Vector256.Create(b1); var vb2 = Vector256.Create(b2);
            var vc1 = Vector256.Create(c1); var vc2 = Vector256.Create(c2);
            var vdecay = Vector256.Create(decay); var vstep = Vector256.Create(step);
            var vib2 = Vector256.Create(invBias2); var veps = Vector256.Create(eps);
            for (; i <= end - 8; i += 8)
            {
                var gi = Vector256.Load(g + i);
                var mi = vb1 * Vector256.Load(m + i) + vc1 * gi;
                var vi = vb2 * Vector256.Load(v + i) + vc2 * gi * gi;
                var pi = Vector256.Load(p + i) * vdecay - vstep * mi / (Vector256.Sqrt(vi * vib2) + veps);
                Vector256.Store(mi, m + i);
                Vector256.Store(vi, v + i);
                Vector256.Store(pi, p + i);
            }
        }
        for (; i < end; i++)
        {
            float gi = g[i];
            float mi = b1 * m[i] + c1 * gi;
            float vi = b2 * v[i] + c2 * gi * gi;
            p[i] = p[i] * decay - step * mi / (MathF.Sqrt(vi * invBias2) + eps);
            m[i] = mi;
            v[i] = vi;
        }
    }

    private struct MultiAdamWState
    {
        public OptimizerState Hyper;
        public int Count;
        public float** P, G, M, V;
        public long* Offsets; // [Count + 1]: tensor t holds flat elements [Offsets[t], Offsets[t + 1])
    }

    /// <summary>
    /// <see cref="AdamWStep"/> on many tensors as one threaded job over their concatenated elements. A MoE model
    /// has thousands of small parameter tensors (bench-tiny: 2,304 expert matrices of 4,096 floats), each below
    /// the size worth splitting across threads, so tensor by tensor the update ran on one core; here the
    /// workers take chunks of the flat range, a chunk may span several tensors. Same arithmetic element for element.
    /// </summary>
    public void AdamWStepMulti(int count, float** p, float** g, float** m, float** v, long* n, float lr, float beta1,
        float beta2, float eps, float weightDecay, float bias1, float bias2)
    {
        if (count <= 0) return;
        long[]? rented = null;
        // Offsets on the stack for the usual sizes; a pooled array beyond (hot loops allocate nothing).
        Span<long> off = count < 4096 ? stackalloc long[count + 1] : (rented = System.Buffers.ArrayPool<long>.Shared.Rent(count + 1));
        try
        {
            off[0] = 0;
            for (int t = 0; t < count; t++)
            {
                if (n[t] < 0) throw new ArgumentOutOfRangeException(nameof(n), $"tensor {t}: element count {n[t]} < 0");
                off[t + 1] = off[t] + n[t];
            }
            fixed (long* po = off)
            {
                var st = new MultiAdamWState
                {
                    Hyper = new OptimizerState
                    {
                        Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay, Bias1 = bias1, Bias2 = bias2,
                    },
                    Count = count, P = p, G = g, M = m, V = v, Offsets = po,
                };
                CpuParallel.For(po[count], ElementwiseMinChunk, &AdamWMultiBody, &st);
            }
        }
        finally
        {
            if (rented != null) System.Buffers.ArrayPool<long>.Shared.Return(rented);
        }
    }

    private static void AdamWMultiBody(void* state, long start, long end)
    {
        var st = (MultiAdamWState*)state;
        long* off = st->Offsets;
        // The tensor holding `start`: the last t with off[t] <= start (binary search; empty tensors are skipped).
        int lo = 0, hi = st->Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (off[mid] <= start) lo = mid; else hi = mid - 1;
        }
        for (int t = lo; t < st->Count && off[t] < end; t++)
        {
            long a = Math.Max(start, off[t]) - off[t], b = Math.Min(end, off[t + 1]) - off[t];
            if (b > a) AdamWRange(&st->Hyper, st->P[t], st->G[t], st->M[t], st->V[t], a, b);
        }
    }

    public void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening,
        float weightDecay, bool nesterov, bool firstStep)
    {
        var st = new OptimizerState
        {
            P = p, G = g, M = momentumBuffer, Lr = lr, Momentum = momentum, Dampening = dampening, WeightDecay = weightDecay,
            Nesterov = nesterov, FirstStep = firstStep,
        };
        CpuParallel.For(n, ElementwiseMinChunk, &SgdBody, &st);
    }

    private static void SgdBody(void* state, long start, long end)
    {
        var st = (OptimizerState*)state;
        float* p = st->P, g = st->G, buf = st->M;
        float lr = st->Lr, wd = st->WeightDecay, mom = st->Momentum, damp = 1f - st->Dampening;
        // The flags are loop-invariant: mode 0 = plain, 1 = momentum, 2 = nesterov.
        int mode = mom == 0 ? 0 : st->Nesterov ? 2 : 1;
        bool first = st->FirstStep;
        long i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            var vlr = Vector512.Create(lr); var vwd = Vector512.Create(wd);
            var vmom = Vector512.Create(mom); var vdamp = Vector512.Create(damp);
            for (; i <= end - 16; i += 16)
            {
                var pi = Vector512.Load(p + i);
                var gi = Vector512.Load(g + i) + vwd * pi;
                var d = gi;
                if (mode != 0)
                {
                    var b = first ? gi : vmom * Vector512.Load(buf + i) + vdamp * gi;
                    Vector512.Store(b, buf + i);
                    d = mode == 2 ? gi + vmom * b : b;
                }
                Vector512.Store(pi - vlr * d, p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vlr = Vector256.Create(lr); var vwd = Vector256.Create(wd);
            var vmom = Vector256.Create(mom); var vdamp = Vector256.Create(damp);
            for (; i <= end - 8; i += 8)
            {
                var pi = Vector256.Load(p + i);
                var gi = Vector256.Load(g + i) + vwd * pi;
                var d = gi;
                if (mode != 0)
                {
                    var b = first ? gi : vmom * Vector256.Load(buf + i) + vdamp * gi;
                    Vector256.Store(b, buf + i);
                    d = mode == 2 ? gi + vmom * b : b;
                }
                Vector256.Store(pi - vlr * d, p + i);
            }
        }
        for (; i < end; i++)
        {
            float pi = p[i];
            float gi = g[i] + wd * pi;
            float d = gi;
            if (mode != 0)
            {
                float b = first ? gi : mom * buf[i] + damp * gi;
                buf[i] = b;
                d = mode == 2 ? gi + mom * b : b;
            }
            p[i] = pi - lr * d;
        }
    }
}
