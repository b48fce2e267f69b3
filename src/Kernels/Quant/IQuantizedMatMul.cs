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

    /// <summary>
    /// The routed experts' products, grouped: x: [M, K] holds the rows of <paramref name="groups"/> experts one
    /// after another (group g owns rows offsets[g] … offsets[g + 1] − 1; offsets: [groups + 1], ascending, from 0 to
    /// M, on the host). For every weight set s &lt; <paramref name="sets"/> (e.g. gate and up, which share their
    /// input) and group g, y[s][offsets[g] …, :] = x[offsets[g] …, :] · w[s · groups + g]ᵀ, each w an [N, K] packed
    /// matrix of <paramref name="format"/> and each y[s] an [M, N] float32 output. The default runs one
    /// <see cref="QuantizedMatMul"/> per non-empty group and set (the reference's oracle); a backend's own kernel
    /// quantises x once and spreads all groups over its threads in one pass.
    /// </summary>
    void GroupedQuantizedMatMul(QuantFormat format, int sets, int groups, int* offsets, int N, int K, float* x,
        byte** w, float** y)
    {
        ValidateGrouped(format, sets, groups, offsets, N, K);
        for (int s = 0; s < sets; s++)
            for (int g = 0; g < groups; g++)
            {
                int m = offsets[g + 1] - offsets[g];
                if (m > 0)
                    QuantizedMatMul(format, m, N, K, x + (long)offsets[g] * K, w[s * groups + g],
                        y[s] + (long)offsets[g] * N);
            }
    }

    /// <summary>The checks of <see cref="GroupedQuantizedMatMul"/>: sizes, then ascending offsets from 0.</summary>
    public static void ValidateGrouped(QuantFormat format, int sets, int groups, int* offsets, int N, int K)
    {
        if (sets < 1 || groups < 0)
            throw new ArgumentException(
                $"GroupedQuantizedMatMul: needs ≥ 1 weight set and ≥ 0 groups, got {sets} and {groups}");
        if (offsets[0] != 0)
            throw new ArgumentException($"GroupedQuantizedMatMul: offsets must start at 0, got {offsets[0]}");
        for (int g = 0; g < groups; g++)
            if (offsets[g + 1] < offsets[g])
                throw new ArgumentException(
                    $"GroupedQuantizedMatMul: offsets must ascend, got {offsets[g]} then {offsets[g + 1]} " +
                    $"at group {g}");
        Validate(format, offsets[groups], N, K);
    }

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
