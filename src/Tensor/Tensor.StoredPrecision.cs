using NativeReasoner.Kernels;

namespace NativeReasoner;

// Weights kept in the precision a checkpoint stores them in (bfloat16 / float16) for inference: a leaf re-stores
// its values in the narrower type, in place, so every module that holds it sees the change.
public unsafe partial class Tensor
{
    /// <summary>
    /// Replaces this contiguous leaf's memory with a copy of its values in <paramref name="dtype"/> (rounded to
    /// nearest even; the old memory is released) and stops it requiring gradients. Views taken earlier keep the old
    /// values.
    /// </summary>
    private protected void ReplaceStorageNoGrad(DType dtype)
    {
        if (dtype is not (DType.Float32 or DType.BFloat16 or DType.Float16))
            throw new ArgumentException($"a weight can be stored as Float32, BFloat16 or Float16, not {dtype}", nameof(dtype));
        if (!IsLeaf || Grad != null || !IsContiguous || Offset != 0)
            throw new InvalidOperationException(
                $"tensor{NameSuffix}: only a contiguous leaf at offset 0 without a gradient can change its stored precision");
        if (dtype == DType)
        {
            RequiresGrad = false;
            return;
        }
        using (TensorScope.Suspend())
        {
            using var converted = ToDTypeNoGrad(dtype); // contiguous, offset 0
            if (converted.Offset != 0) throw new InvalidOperationException("a fresh conversion must start at offset 0");
            var replacement = converted._buffer!.RetainSelf();
            _buffer!.Release();
            _buffer = replacement;
        }
        DType = dtype;
        RequiresGrad = false;
    }
}
