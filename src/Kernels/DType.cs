namespace NativeReasoner.Kernels;

/// <summary>Element types a tensor can store. Compute is float32; the 16-bit floats are storage formats.</summary>
public enum DType
{
    Float32,
    BFloat16,
    Float16,
    Int32,
    Int64,
    /// <summary>
    /// float8_e4m3fn (1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no infinities, 0x7F/0xFF are NaN):
    /// the weight format of DeepSeek-V3/R1 checkpoints. Storage only: it is dequantised with its block scales
    /// (<c>NativeReasoner.IO.Fp8BlockDequant</c>), never computed with.
    /// </summary>
    Float8E4M3,

    /// <summary>
    /// Bytes of a packed block format (<c>Tensor.PackedFormat</c>: bf16, Q8_0, Q4_0, Q4_K, Q6_K) holding a weight
    /// matrix [N, K] as N packed rows. Storage only, read by the quantised products (<c>Tensor.Linear</c>); the
    /// element size of 1 counts bytes, not weights.
    /// </summary>
    Packed,
}

public static class DTypeInfo
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.BFloat16 => 2,
        DType.Float16 => 2,
        DType.Int32 => 4,
        DType.Int64 => 8,
        DType.Float8E4M3 => 1,
        DType.Packed => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    public static bool IsFloating(this DType dtype) => dtype is DType.Float32 or DType.BFloat16 or DType.Float16;
}
