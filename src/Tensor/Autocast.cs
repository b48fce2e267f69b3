namespace NativeReasoner;

/// <summary>
/// Mixed precision for inference, like torch.autocast: inside <see cref="Bf16"/>, matrix products without
/// gradients round both operands to bfloat16 and multiply with fp32 accumulation (<c>IKernels.GemmBf16</c>, tensor
/// cores on CUDA); everything else (norms, softmax, attention, the grouped expert GEMMs) stays fp32. The scope
/// belongs to the async flow that opened it. Used to report the bf16 error of the logits beside the fp32 one.
/// </summary>
public static class Autocast
{
    private static readonly AsyncLocal<bool> s_bf16 = new();

    /// <summary>True inside a <see cref="Bf16"/> scope of this flow.</summary>
    public static bool IsBf16 => s_bf16.Value;

    /// <summary>bf16 matrix products until the scope is disposed.</summary>
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
