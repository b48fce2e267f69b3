using System.Runtime.CompilerServices;

// The GEMM tests force the AVX2 and scalar micro-kernels through the internal Sgemm/GemmConfig entry points.
[assembly: InternalsVisibleTo("NativeReasoner.Tests")]
