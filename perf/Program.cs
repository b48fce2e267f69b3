using BenchmarkDotNet.Running;

namespace NativeReasoner.Perf;

/// <summary>
/// BenchmarkDotNet entry point: `dotnet run -c Release --project perf -- --filter '*'`.
/// Results are exported as markdown under BenchmarkDotNet.Artifacts/results (copy what you report into perf/results/).
/// </summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
