namespace NativeReasoner.Kernels.Verification;

public static unsafe partial class KernelChecks
{
    static partial void AddAttentionBf16(List<KernelCheck> list)
    {
        // PENDING: the checks of this family arrive with its kernels.
    }
}
