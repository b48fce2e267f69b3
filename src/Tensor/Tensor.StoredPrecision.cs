using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Memory;

namespace NativeReasoner;

// Weights kept in the precision a checkpoint stores them in (bfloat16 / float16) for inference: a leaf re-stores
// its values in the narrower type, in place, so every module that holds it sees the change.
public unsafe partial class Tensor
{
    private static readonly AsyncLocal<bool> s_skipRandomInit = new();

    private static bool RandomInitSkipped => s_skipRandomInit.Value;

    /// <summary>
    /// Until the scope is disposed, <see cref="Rand"/> and <see cref="Randn"/> in this async flow return uninitialised
    /// tensors and draw nothing: for building a model whose every value is loaded right after. Besides the time, this
    /// keeps the initial values from ever occupying memory (untouched pages are not resident).
    /// </summary>
    public static IDisposable SkipRandomInit()
    {
        bool previous = s_skipRandomInit.Value;
        s_skipRandomInit.Value = true;
        return new RandomInitScope(previous);
    }

    private sealed class RandomInitScope(bool previous) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            s_skipRandomInit.Value = previous;
        }
    }

    /// <summary>
    /// Replaces this contiguous leaf's memory with a copy of its values in <paramref name="dtype"/> (rounded to
    /// nearest even; the old memory is released) and stops it requiring gradients. Views taken earlier keep the old
    /// values.
    /// </summary>
    private protected void ReplaceStorageNoGrad(DType dtype, bool keepValues = true)
    {
        if (dtype is not (DType.Float32 or DType.BFloat16 or DType.Float16))
            throw new ArgumentException($"a weight can be stored as Float32, BFloat16 or Float16, not {dtype}",
                nameof(dtype));
        if (!IsLeaf || Grad != null || !IsContiguous || Offset != 0)
            throw new InvalidOperationException(
                $"tensor{NameSuffix}: only a contiguous leaf at offset 0 without a gradient can change its stored " +
                "precision");
        if (dtype == DType)
        {
            RequiresGrad = false;
            return;
        }
        // Host weights get a block of exactly their size: the pool's power-of-two classes would hold up to twice
        // the model's bytes, and a weight lives as long as the model anyway.
        long bytes = Numel * dtype.SizeOf();
        var replacement = Device.Memory is HostMemory ? NativeBuffer.AllocateUnpooled(bytes) : Device.Allocate(bytes);
        try
        {
            var k = Device.Kernels;
            byte* dst = replacement.Pointer;
            // A loader about to overwrite every value skips the conversion: reading the old block (never written
            // under SkipRandomInit) would make it resident for nothing and raise the load's peak by its size.
            if (keepValues) switch (DType, dtype)
                {
                    case (DType.Float32, DType.BFloat16): k.FloatToBFloat16(Data, (ushort*)dst, Numel); break;
                    case (DType.Float32, DType.Float16): k.FloatToHalf(Data, (ushort*)dst, Numel); break;
                    case (DType.BFloat16, DType.Float32): k.BFloat16ToFloat((ushort*)RawPointer, (float*)dst, Numel); break;
                    case (DType.Float16, DType.Float32): k.HalfToFloat((ushort*)RawPointer, (float*)dst, Numel); break;
                    default:
                        // 16-bit to the other 16-bit type: through float32 (exact widening, one rounding).
                        using (TensorScope.Suspend())
                        {
                            using var wide = ToDTypeNoGrad(DType.Float32);
                            if (dtype == DType.BFloat16) k.FloatToBFloat16(wide.Data, (ushort*)dst, Numel);
                            else k.FloatToHalf(wide.Data, (ushort*)dst, Numel);
                        }
                        break;
                }
        }
        catch
        {
            replacement.Release();
            throw;
        }
        _buffer!.Release();
        _buffer = replacement;
        DType = dtype;
        RequiresGrad = false;
    }
}
