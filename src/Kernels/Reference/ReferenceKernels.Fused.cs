// Source: SwiGLU (arXiv:2002.05202); the per-token log-prob gather of TRL trainer/grpo_trainer.py.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void SiluMul(float* gate, float* up, float* y, long n)
    {
        for (long i = 0; i < n; i++)
        {
            double g = gate[i];
            y[i] = (float)(g / (1.0 + Math.Exp(-g)) * up[i]);
        }
    }

    public void SiluMulBackward(float* gate, float* up, float* dy, float* dgate, float* dup, long n)
    {
        for (long i = 0; i < n; i++)
        {
            double g = gate[i], u = up[i], d = dy[i];
            double s = 1.0 / (1.0 + Math.Exp(-g));
            dgate[i] = (float)(d * u * s * (1.0 + g * (1.0 - s)));
            dup[i] = (float)(d * g * s);
        }
    }

    public void LogSoftmaxGather(float* logits, long* ids, float* logp, float* lse, int rows, int V, float invTemperature)
    {
        // logits: [rows, V]; ids, logp, lse: [rows]
        double invT = invTemperature;
        for (int r = 0; r < rows; r++)
        {
            float* row = logits + (long)r * V;
            double max = double.NegativeInfinity;
            bool nan = false;
            for (int c = 0; c < V; c++) { nan |= float.IsNaN(row[c]); max = Math.Max(max, row[c] * invT); }
            double l;
            if (nan) l = double.NaN;
            else if (double.IsNegativeInfinity(max)) l = max;
            else
            {
                double sum = 0;
                for (int c = 0; c < V; c++) sum += Math.Exp(row[c] * invT - max);
                l = max + Math.Log(sum);
            }
            lse[r] = (float)l;
            logp[r] = (float)(row[ids[r]] * invT - l);
        }
    }

    public void LogSoftmaxGatherBackward(float* logits, long* ids, float* lse, float* dlogp, float* dlogits,
        int rows, int V, float invTemperature)
    {
        double invT = invTemperature;
        for (int r = 0; r < rows; r++)
        {
            float* row = logits + (long)r * V, d = dlogits + (long)r * V;
            double g = dlogp[r] * invT, l = lse[r];
            long id = ids[r];
            for (int c = 0; c < V; c++)
                d[c] = (float)(((c == id ? 1.0 : 0.0) - Math.Exp(row[c] * invT - l)) * g);
        }
    }
}
