namespace NativeReasoner.Kernels.Verification;

public static unsafe partial class KernelChecks
{
    static partial void AddElementwise(List<KernelCheck> list)
    {
        // PENDING: the checks of this family arrive with its kernels.
    }
}
