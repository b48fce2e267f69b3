using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using Xunit;

namespace NativeReasoner.Tests.Cuda;

/// <summary>A theory that runs only where the CUDA runtime of <paramref name="kind"/> opens; else skipped, saying why.</summary>
public sealed class CudaTheoryAttribute : TheoryAttribute
{
    public CudaTheoryAttribute(CudaRuntimeKind kind)
    {
        if (!CudaBackend.TryGet(kind, out _, out var reason)) Skip = $"CUDA {kind} unavailable: {reason}";
    }
}

/// <summary>A fact that runs only where the CUDA runtime of <paramref name="kind"/> opens; else skipped, saying why.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute(CudaRuntimeKind kind)
    {
        if (!CudaBackend.TryGet(kind, out _, out var reason)) Skip = $"CUDA {kind} unavailable: {reason}";
    }
}
