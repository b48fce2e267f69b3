// Source: ggml's dequantize_row_* (ggml-quants.c) then a plain fp32 product: the oracle of the packed kernels.
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels : IQuantizedMatMul
{
    /// <summary>Each weight row dequantised to fp32, then every dot product summed in double.</summary>
    public void QuantizedMatMul(QuantFormat format, int M, int N, int K, float* x, byte* w, float* y)
    {
        IQuantizedMatMul.Validate(format, M, N, K);
        long rowBytes = format.RowBytes(K);
        var row = new float[K];
        for (int n = 0; n < N; n++)
        {
            BlockQuantizer.DequantizeRow(format, new ReadOnlySpan<byte>(w + n * rowBytes, (int)rowBytes), row);
            for (int m = 0; m < M; m++)
            {
                double sum = 0;
                float* xm = x + (long)m * K;
                for (int k = 0; k < K; k++) sum += (double)xm[k] * row[k];
                y[(long)m * N + n] = (float)sum;
            }
        }
    }
}
