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
            double s = 0;
            for (int c = 0; c < cols; c++) s += log ? gr[c] : (double)gr[c] * yr[c];
            for (int c = 0; c < cols; c++)
                dr[c] = (float)(log ? gr[c] - Math.Exp(yr[c]) * s : yr[c] * (gr[c] - s));
        }
    }
}
