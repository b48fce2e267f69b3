namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// The fast CPU backend: SIMD (TensorPrimitives, Vector512/Vector256) and both cores through one worker
/// pool. Each op is tested against <see cref="Reference.ReferenceKernels"/>.
/// </summary>
public sealed unsafe partial class CpuKernels : IKernels
{
    public static CpuKernels Instance { get; } = new();

    public string Name => "cpu";
}
