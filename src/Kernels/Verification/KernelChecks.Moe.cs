namespace NativeReasoner.Kernels.Verification;

public static unsafe partial class KernelChecks
{
    static partial void AddMoe(List<KernelCheck> list)
    {
        // PENDING: the checks of this family arrive with its kernels.
    }
}
