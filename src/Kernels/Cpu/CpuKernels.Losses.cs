// Source: torch.nn.functional.cross_entropy; the GRPO token loss of TRL trainer/grpo_trainer.py (arXiv:2402.03300).
using System.Numerics.Tensors;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    private struct CrossEntropyState
    {
        public float* Logits, Loss, Lse, DLoss, DLogits;
        public long* Targets;
        public int V;
        public long IgnoreIndex;
    }

    public void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex)
    {
        // logits: [rows, V]; targets, loss, lse: [rows]
        var st = new CrossEntropyState { Logits = logits, Targets = targets, Loss = loss, Lse = lse, V = V, IgnoreIndex = ignoreIndex };
        CpuParallel.For(rows, RowsMinChunk(V), &CrossEntropyBody, &st);
    }

    private static void CrossEntropyBody(void* state, long start, long end)
    {
        var st = (CrossEntropyState*)state;
        int V = st->V;
        float* tmp = stackalloc float[TempChunk];
        for (long r = start; r < end; r++)
        {
            float* row = st->Logits + r * V;
            float max = TensorPrimitives.Max(new ReadOnlySpan<float>(row, V)); // NaN propagates
            double l;
            if (float.IsNegativeInfinity(max)) l = max;
            else
            {
                double sum = 0;
                for (int c = 0; c < V; c += TempChunk)
                {
                    int len = Math.Min(TempChunk, V - c);
                    var t = new Span<float>(tmp, len);
                    TensorPrimitives.Subtract(new ReadOnlySpan<float>(row + c, len), max, t);
                    TensorPrimitives.Exp(t, t);
                    sum += TensorPrimitives.Sum(t);
                }
                l = max + Math.Log(sum);
            }
            st->Lse[r] = (float)l;
            long target = st->Targets[r];
            st->Loss[r] = target == st->IgnoreIndex ? 0f : (float)(l - row[target]);
        }
    }

    public void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits,
        int rows, int V, long ignoreIndex)
    {
        var st = new CrossEntropyState
        {
            Logits = logits, Lse = lse, Targets = targets, DLoss = dloss, DLogits = dlogits, V = V, IgnoreIndex = ignoreIndex,
        };
        CpuParallel.For(rows, RowsMinChunk(V), &CrossEntropyBackwardBody, &st);
    }

    private static void CrossEntropyBackwardBody(void* state, long start, long end)
    {
        var st = (CrossEntropyState*)state;
        int V = st->V;
        for (long r = start; r < end; r++)
        {
            var d = new Span<float>(st->DLogits + r * V, V);
            long target = st->Targets[r];
            if (target == st->IgnoreIndex)
            {
                d.Clear();
                continue;
            }
            float g = st->DLoss[r];
            // dlogits = exp(logits − lse)·g, then − g at the target.
            TensorPrimitives.Subtract(new ReadOnlySpan<float>(st->Logits + r * V, V), st->Lse[r], d);
            TensorPrimitives.Exp(d, d);
            TensorPrimitives.Multiply(d, g, d);
            d[(int)target] -= g;
        }
    }
}
