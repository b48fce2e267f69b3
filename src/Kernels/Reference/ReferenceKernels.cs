// Source: the op set of IKernels.cs (PyTorch semantics, stated in each op's doc comment).
namespace NativeReasoner.Kernels.Reference;

/// <summary>
/// The oracle: every op as a plain scalar, single-threaded loop that is obviously right. Slow on purpose.
/// Every fast path is tested against it. Accumulates in double where a sum is long.
/// </summary>
public sealed unsafe partial class ReferenceKernels : IKernels
{
    public static ReferenceKernels Instance { get; } = new();

    public string Name => "reference";
}
