// Source: ggml's mul_mat with a quantised src0 (ggml-cpu.c, ggml_compute_forward_mul_mat): y = x · Wᵀ with W packed.
namespace NativeReasoner.Kernels.Quant;

/// <summary>
/// The optional op of products with packed weights (see <see cref="Fallback.KernelFallback.QuantizedMatMul"/>):
/// a linear layer's y = x · Wᵀ where W: [N, K] lies as N packed rows of <paramref name="format"/>
/// (N · RowBytes(K) bytes, <see cref="QuantFormatInfo"/>). x: [M, K] float32, y: [M, N] float32 (overwritten),
/// all contiguous in the backend's memory. K must be a multiple of the format's block size.
/// </summary>
public unsafe interface IQuantizedMatMul
{
    void QuantizedMatMul(QuantFormat format, int M, int N, int K, float* x, byte* w, float* y);

    /// <summary>The argument checks every implementation makes first: a clear error naming the bad value.</summary>
    public static void Validate(QuantFormat format, int M, int N, int K)
    {
        if (M < 0 || N < 0 || K < 0)
            throw new ArgumentException($"QuantizedMatMul: sizes must be ≥ 0, got M = {M}, N = {N}, K = {K}");
        if (K % format.BlockSize() != 0)
            throw new ArgumentException(
                $"QuantizedMatMul: K = {K} is not a multiple of the {format.Name()} block size {format.BlockSize()}");
    }
}
