// Source: RoPE (arXiv:2104.09864) on interleaved pairs, as official DeepSeek-V3 inference/model.py apply_rotary_emb.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse)
    {
        // x, y: [outer, T, mid, D]; cos, sin: [T, D/2]
        if ((D & 1) != 0) throw new ArgumentException("D must be even", nameof(D));
        int half = D / 2;
        for (int o = 0; o < outer; o++)
            for (int t = 0; t < T; t++)
                for (int m = 0; m < mid; m++)
                {
                    long row = (((long)o * T + t) * mid + m) * D;
                    for (int i = 0; i < half; i++)
                    {
                        double c = cos[(long)t * half + i];
                        double s = inverse ? -sin[(long)t * half + i] : sin[(long)t * half + i];
                        double x0 = x[row + 2 * i], x1 = x[row + 2 * i + 1];
                        y[row + 2 * i] = (float)(x0 * c - x1 * s);
                        y[row + 2 * i + 1] = (float)(x0 * s + x1 * c);
                    }
                }
    }
}
