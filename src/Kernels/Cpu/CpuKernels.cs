// Source: the op set of IKernels.cs (PyTorch semantics, stated in each op's doc comment).
namespace NativeReasoner.Kernels.Cpu;

/// <summary>
/// The fast CPU backend: SIMD (TensorPrimitives, Vector512/Vector256) and both cores through one worker
/// pool. Each op is tested against <see cref="Reference.ReferenceKernels"/>.
/// </summary>
public sealed unsafe partial class CpuKernels : IKernels, IMultiTensorAdamW
{
    public static CpuKernels Instance { get; } = new();

    public string Name => "cpu";

    /// <summary>Native scratch bytes the kernels hold now (packing panels, attention tiles).</summary>
    public static long ScratchBytes => global::NativeReasoner.Kernels.Cpu.Gemm.GemmScratch.Bytes;

    /// <summary>High-water mark of <see cref="ScratchBytes"/> since <see cref="ResetScratchPeak"/>.</summary>
    public static long ScratchPeakBytes => global::NativeReasoner.Kernels.Cpu.Gemm.GemmScratch.PeakBytes;

    public static void ResetScratchPeak() => global::NativeReasoner.Kernels.Cpu.Gemm.GemmScratch.ResetPeak();
}
