using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

/// <summary>
/// <see cref="IKernels"/> on an ILGPU accelerator. Every incoming pointer is an address inside an
/// <see cref="IlgpuMemory"/> allocation; it is mapped back to (buffer, byte offset) and handed to the kernel
/// as a typed view. Each kernel is compiled once, on first use, and cached in a field. Launches go to the
/// accelerator's default stream in order; the memory synchronises before any host read.
/// </summary>
public sealed unsafe partial class IlgpuKernels : IKernels
{
    private readonly IlgpuBackend _backend;
    private readonly Accelerator _acc;

    /// <summary>Threads per group of the row kernels (reductions, softmax, norms, losses, top-k).</summary>
    private readonly int _rowGroup;

    /// <summary>Most groups a row kernel launches; groups loop over rows beyond that (grid-stride).</summary>
    private readonly int _maxRowGroups;

    internal IlgpuKernels(IlgpuBackend backend)
    {
        _backend = backend;
        _acc = backend.Accelerator;
        int warp = _acc.WarpSize;
        // Group size: a multiple of the warp size (the shuffles reduce whole warps), at most 256 threads and
        // at most MaxWarps warps (the shared scratch of the group reductions holds one slot per warp).
        int g = Math.Min(256, _acc.MaxNumThreadsPerGroup);
        g = Math.Min(g, DeviceMath.MaxWarps * warp);
        _rowGroup = Math.Max(warp, g / warp * warp);
        // ILGPU's CPU accelerator runs the groups of one launch one after another on its thread team, and
        // its barriers are costly: few groups that loop over rows beat one group per row there.
        _maxRowGroups = _acc.AcceleratorType == AcceleratorType.CPU ? 2 : 65535;
    }

    public string Name => $"ilgpu ({_acc.AcceleratorType})";

    private IlgpuMemory Mem => _backend.Memory;

    private ArrayView<float> F(float* p) => Mem.View<float>(p);
    private ArrayView<long> L(long* p) => Mem.View<long>(p);
    private ArrayView<int> I(int* p) => Mem.View<int>(p);
    private ArrayView<ushort> U(ushort* p) => Mem.View<ushort>(p);

    /// <summary>Element count as a launch extent; ILGPU's 1-D index is 32-bit.</summary>
    private static int Extent(long n) =>
        n <= int.MaxValue ? (int)n : throw new NotSupportedException($"ILGPU kernels take at most {int.MaxValue} elements per launch, got {n}");

    /// <summary>A row kernel's launch: min(rows, cap) groups of <see cref="_rowGroup"/> threads.</summary>
    private KernelConfig RowConfig(long rows) =>
        new((int)Math.Max(1, Math.Min(rows, _maxRowGroups)), _rowGroup);

    /// <summary>A scratch allocation of n elements, freed by the caller after the launch that uses it.</summary>
    private MemoryBuffer1D<T, Stride1D.Dense> Scratch<T>(long n) where T : unmanaged => _acc.Allocate1D<T>(Math.Max(1, n));
}
