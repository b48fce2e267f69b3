using BenchmarkDotNet.Running;

namespace NativeReasoner.Perf;

/// <summary>
/// BenchmarkDotNet entry point: `dotnet run -c Release --project perf -- --filter '*'`.
/// Results are exported as markdown under BenchmarkDotNet.Artifacts/results (copy what you report into perf/results/).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "model")
        {
            ModelThroughput.Run(args.Length > 1 ? args[1] : "bench-tiny");
            return;
        }
        if (args.Length > 0 && args[0] == "profile-decode")
        {
            DecodeProfile.Run(args.Length > 1 ? args[1] : "bench-tiny", args.Length > 2 ? int.Parse(args[2]) : 96);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
