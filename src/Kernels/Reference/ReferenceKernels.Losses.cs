// Source: torch.nn.functional.cross_entropy; the GRPO token loss of TRL trainer/grpo_trainer.py (arXiv:2402.03300).
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex)
    {
        // logits: [rows, V]; targets, loss, lse: [rows]
        for (int r = 0; r < rows; r++)
        {
            float* row = logits + (long)r * V;
            double l = LogSumExp(row, V);
            lse[r] = (float)l;
            long t = targets[r];
            loss[r] = t == ignoreIndex ? 0f : (float)(l - row[t]);
        }
    }

    private static double LogSumExp(float* row, int n)
    {
        double max = double.NegativeInfinity;
        bool nan = false;
        for (int c = 0; c < n; c++) { nan |= float.IsNaN(row[c]); max = Math.Max(max, row[c]); }
        if (nan) return double.NaN;
        if (double.IsNegativeInfinity(max)) return max;
        double sum = 0;
        for (int c = 0; c < n; c++) sum += Math.Exp(row[c] - max);
        return max + Math.Log(sum);
    }

    public void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits,
        int rows, int V, long ignoreIndex)
    {
        for (int r = 0; r < rows; r++)
        {
            float* row = logits + (long)r * V, d = dlogits + (long)r * V;
            long t = targets[r];
            if (t == ignoreIndex)
            {
                for (int c = 0; c < V; c++) d[c] = 0;
                continue;
            }
            double g = dloss[r], l = lse[r];
            for (int c = 0; c < V; c++)
                d[c] = (float)((Math.Exp(row[c] - l) - (c == t ? 1.0 : 0.0)) * g);
        }
    }
}
