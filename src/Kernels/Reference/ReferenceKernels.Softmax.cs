// Source: online softmax normaliser (arXiv:1805.02867); torch.softmax / log_softmax.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void Softmax(float* x, float* y, int rows, int cols, bool log)
    {
        // x, y: [rows, cols]
        for (int r = 0; r < rows; r++)
        {
            float* xr = x + (long)r * cols, yr = y + (long)r * cols;
            double max = double.NegativeInfinity;
            bool nan = false;
            for (int c = 0; c < cols; c++) { nan |= float.IsNaN(xr[c]); max = Math.Max(max, xr[c]); }
            if (nan) max = double.NaN;
            double sum = 0;
            for (int c = 0; c < cols; c++) sum += Math.Exp(xr[c] - max);
            double logSum = Math.Log(sum);
            for (int c = 0; c < cols; c++)
            {
                double z = xr[c] - max; // read before the write: y may alias x
                yr[c] = (float)(log ? z - logSum : Math.Exp(z) / sum);
            }
        }
    }

    public void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log)
    {
        for (int r = 0; r < rows; r++)
        {
            float* yr = y + (long)r * cols, gr = dy + (long)r * cols, dr = dx + (long)r * cols;
            if (log)
            {
                double sum = 0;
                for (int c = 0; c < cols; c++) sum += gr[c];
                for (int c = 0; c < cols; c++) dr[c] = (float)(gr[c] - Math.Exp(yr[c]) * sum);
                continue;
            }
            // dx = y ⊙ (dy·Σy − Σ dy⊙y). Equal to y ⊙ (dy − Σ dy⊙y) since Σy = 1, but for a near one-hot
            // row the dominant dy·(1 − y) term is then computed from the small y's (Σy − y_i), which are
            // exact, instead of from 1 − y_i, which float32 rounding of y_i makes inaccurate.
            double sumY = 0, dot = 0;
            for (int c = 0; c < cols; c++)
            {
                sumY += yr[c];
                dot += (double)gr[c] * yr[c];
            }
            for (int c = 0; c < cols; c++) dr[c] = (float)(yr[c] * (gr[c] * sumY - dot));
        }
    }
}
