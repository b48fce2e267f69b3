// Source: AdamW (arXiv:1711.05101) as torch.optim.AdamW; SGD with momentum/Nesterov as torch.optim.SGD.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2,
        float eps, float weightDecay, float bias1, float bias2)
    {
        for (long i = 0; i < n; i++)
        {
            double pi = p[i], gi = g[i];
            pi -= (double)lr * weightDecay * pi;
            double mi = beta1 * (double)m[i] + (1.0 - beta1) * gi;
            double vi = beta2 * (double)v[i] + (1.0 - beta2) * gi * gi;
            pi -= lr * (mi / bias1) / (Math.Sqrt(vi / bias2) + eps);
            m[i] = (float)mi;
            v[i] = (float)vi;
            p[i] = (float)pi;
        }
    }

    public void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening,
        float weightDecay, bool nesterov, bool firstStep)
    {
        for (long i = 0; i < n; i++)
        {
            double gi = g[i] + (double)weightDecay * p[i];
            double d = gi;
            if (momentum != 0)
            {
                double buf = firstStep ? gi : momentum * (double)momentumBuffer[i] + (1.0 - dampening) * gi;
                momentumBuffer[i] = (float)buf;
                d = nesterov ? gi + momentum * buf : buf;
            }
            p[i] = (float)(p[i] - lr * d);
        }
    }
}
