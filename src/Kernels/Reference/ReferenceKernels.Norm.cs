// Source: RMSNorm (arXiv:1910.07467).
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps)
    {
        // x, y: [rows, cols]; w: [cols]; rstd: [rows]
        for (int r = 0; r < rows; r++)
        {
            float* xr = x + (long)r * cols, yr = y + (long)r * cols;
            double ss = 0;
            for (int c = 0; c < cols; c++) ss += (double)xr[c] * xr[c];
            double rs = 1.0 / Math.Sqrt(ss / cols + eps);
            rstd[r] = (float)rs;
            for (int c = 0; c < cols; c++) yr[c] = (float)(xr[c] * rs * w[c]);
        }
    }

    public void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols)
    {
        // y_c = x_c·r·w_c with r = (mean(x²) + eps)^-1/2, so ∂r/∂x_c = −r³·x_c/cols and
        // dx_c = r·w_c·dy_c − x_c·r³/cols · Σ_k dy_k·w_k·x_k;  dw_c = Σ_rows dy_c·x_c·r.
        var dwAcc = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            float* xr = x + (long)r * cols, gr = dy + (long)r * cols, dr = dx + (long)r * cols;
            double rs = rstd[r];
            double dot = 0;
            for (int c = 0; c < cols; c++) dot += (double)gr[c] * w[c] * xr[c];
            double k = rs * rs * rs / cols * dot;
            for (int c = 0; c < cols; c++)
            {
                dwAcc[c] += (double)gr[c] * xr[c] * rs;
                dr[c] = (float)(rs * w[c] * gr[c] - xr[c] * k);
            }
        }
        for (int c = 0; c < cols; c++) dw[c] = (float)dwAcc[c];
    }
}
