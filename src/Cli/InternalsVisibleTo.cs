using System.Runtime.CompilerServices;

// The tests reach the GPU benchmark harness (GpuBenchPeaks, GpuBenchTraining.CountParameters, ...) directly.
[assembly: InternalsVisibleTo("NativeReasoner.Tests")]
