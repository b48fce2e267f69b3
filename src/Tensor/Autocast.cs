namespace NativeReasoner;

/// <summary>
/// bf16 mixed precision, like torch.autocast(dtype=torch.bfloat16): inside <see cref="Bf16"/>, every matrix product
/// (the linear layers and the MoE experts' grouped GEMMs, and their gradient products in backward) rounds both
/// operands to bfloat16 and multiplies with fp32 accumulation (<c>IKernels.GemmBf16</c>, tensor cores on CUDA); on a
/// device with bf16 flash kernels (CUDA) attention runs them (bf16 q, k, v, o and gradients, fp32 softmax). Norms,
/// softmax, losses and the optimizer stay fp32, and the parameters stay fp32 master weights: a weight is rounded to
/// bf16 where a product reads it, each step, so no bf16 shadow can fall out of step with the optimizer. The scope belongs to the
/// async flow that opened it; a product recorded inside it runs its backward in bf16 even when backward is called
/// after the scope has closed.
/// </summary>
public static class Autocast
{
    private static readonly AsyncLocal<bool> s_bf16 = new();

    /// <summary>True inside a <see cref="Bf16"/> scope of this flow.</summary>
    public static bool IsBf16 => s_bf16.Value;

    /// <summary>bf16 matrix products (and flash attention where the device has it) until the scope is
    /// disposed.</summary>
    public static IDisposable Bf16()
    {
        bool previous = s_bf16.Value;
        s_bf16.Value = true;
        return new Scope(previous);
    }

    private sealed class Scope(bool previous) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            s_bf16.Value = previous;
        }
    }
}
