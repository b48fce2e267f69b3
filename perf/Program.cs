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
        if (args.Length > 0 && args[0] == "train")
        {
            // Training steps only (no decode probe): `train [steps]`, for A/B runs and `perf record -D`.
            var c = NativeReasoner.Model.DeepseekV3Config.Preset("bench-tiny");
            int steps = args.Length > 1 ? int.Parse(args[1]) : 5;
            int warmup = args.Length > 2 ? int.Parse(args[2]) : 1;
            double t = NativeReasoner.Model.ModelBenchmark.TrainingTokensPerSecond(c, batch: 16, seq: 128, steps: steps, warmup: warmup);
            Console.WriteLine($"bench-tiny training step, 16 x 128: {t:F0} tokens/s (median of {steps} after {warmup} warm-up); load {File.ReadAllText("/proc/loadavg").Trim()}");
            return;
        }
        if (args.Length > 0 && args[0] == "tokenize")
        {
            TokenizerThroughput.Run(args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3);
            return;
        }
        if (args.Length > 0 && args[0] == "compare-llamacpp")
        {
            CompareLlamaCpp.Run(args[1..]);
            return;
        }
        if (args.Length > 0 && args[0] == "profile-prefill")
        {
            PrefillProfile.Run(args.Length > 1 ? args[1] : "q8_0", args.Length > 2 ? int.Parse(args[2]) : 512);
            return;
        }
        if (args.Length > 0 && args[0] == "profile-dense-decode")
        {
            DenseDecodeProfile.Run(args.Length > 1 ? args[1] : "q8_0", args.Length > 2 ? int.Parse(args[2]) : 1,
                args.Length > 3 ? int.Parse(args[3]) : 12, args.Length > 4 ? args[4] : "qwen2.5-0.5b",
                args.Length > 5 ? int.Parse(args[5]) : 0);
            return;
        }
        if (args.Length > 0 && args[0] == "profile-quant-paths")
        {
            DenseDecodeProfile.Paths(args.Length > 1 ? args[1] : "q8_0",
                args.Length > 2 ? args[2..].Select(int.Parse).ToArray() : [1, 2, 4, 8, 16, 32, 64, 128]);
            return;
        }
        if (args.Length > 0 && args[0] == "profile-grouped")
        {
            GroupedProfile.Run(args.Length > 1 ? int.Parse(args[1]) : 50);
            return;
        }
        if (args.Length > 0 && args[0] == "profile-moe")
        {
            MoeProfile.Run(args.Length > 1 ? args[1] : "f32", args.Length > 2 ? args[2] : "prefill",
                args.Length > 3 ? int.Parse(args[3]) : 512);
            return;
        }
        if (args.Length > 0 && args[0] == "serve-throughput")
        {
            ServeThroughput.Run(args.Length > 1 ? args[1] : "bench-tiny", args.Length > 2 ? int.Parse(args[2]) : 96);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
