using System.Runtime.CompilerServices;

// The GEMM tests force the AVX2 and scalar micro-kernels through the internal Sgemm/GemmConfig entry points.
[assembly: InternalsVisibleTo("NativeReasoner.Tests")]
// The perf tools time the packed-weight dot products path by path (QuantIsa).
[assembly: InternalsVisibleTo("NativeReasoner.Perf")]
