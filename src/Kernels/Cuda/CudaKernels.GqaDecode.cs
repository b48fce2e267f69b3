// Source: GQA (arXiv:2305.13245) decode against per-sequence K/V caches, in the layout of HF's cache_utils.py.
namespace NativeReasoner.Kernels.Cuda;

/// <summary>Batched grouped-query decode on the device (kernels/cuda/gqa_decode.cu).</summary>
public sealed unsafe partial class CudaKernels : IGqaDecodeAttention
{
    /// <summary>Threads per block of the decode kernel: one key per thread per tile.</summary>
    private const int GqaDecodeBlock = 128;

    /// <inheritdoc/>
    /// <remarks>The host lengths are uploaded on the stream (no wait); everything is fp32.</remarks>
    public void GqaDecodeAttention(float* q, float* kCache, float* vCache, int* lengths, float* o, float* lse,
        int batch, int Hq, int Hkv, int capacity, int Dk, int Dv, float scale)
    {
        IGqaDecodeAttention.Validate(nameof(GqaDecodeAttention), lengths, batch, Hq, Hkv, capacity, Dk, Dv);
        long rows = (long)batch * Hq;
        if (rows == 0) return;
        // q [Dk] | p [block] | acc [Dv] | block-reduction scratch [32], all fp32.
        long shared = ((long)Dk + GqaDecodeBlock + Dv + 32) * sizeof(float);
        if (shared > 48 * 1024)
            throw new NotSupportedException($"GqaDecodeAttention: Dk + Dv = {Dk + Dv} needs {shared} bytes of shared " +
                                            "memory, over the 48 KiB a launch gets without opting in");
        var lens = Upload(new ReadOnlySpan<int>(lengths, batch));
        try
        {
            int* dLens = (int*)lens.Pointer;
            void** a = stackalloc void*[13];
            a[0] = &q; a[1] = &kCache; a[2] = &vCache; a[3] = &dLens; a[4] = &o; a[5] = &lse; a[6] = &batch;
            a[7] = &Hq; a[8] = &Hkv; a[9] = &capacity; a[10] = &Dk; a[11] = &Dv; a[12] = &scale;
            uint grid = (uint)Math.Min(rows, 1 << 20); // grid-stride over rows beyond that
            Launch("gqa_decode.cu", "nr_gqa_decode_f32", grid, GqaDecodeBlock, (int)shared, a);
        }
        finally
        {
            lens.Release();
        }
    }
}
