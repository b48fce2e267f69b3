using NativeReasoner.Model;

namespace NativeReasoner.Perf;

/// <summary>
/// `dotnet run -c Release --project perf -- model [preset]`: bench-tiny training-step and decode throughput
/// (tokens/s), the model-level numbers of the CPU-performance issue. Wall-clock rates over several steps
/// after a warm-up; run it beside the PyTorch anchor (perf/compare-cpu.sh) for a ratio.
/// </summary>
public static class ModelThroughput
{
    public static void Run(string preset)
    {
        var c = DeepseekV3Config.Preset(preset);
        Console.WriteLine($"load average before: {LoadAverage()}");
        var (decode, bytes) = ModelBenchmark.DecodeTokensPerSecond(c, batch: 16, prompt: 32, newTokens: 96, rounds: 3);
        Console.WriteLine($"{preset} decode, batch 16: {decode:F0} tokens/s; compressed cache {bytes} bytes/token");
        double train = ModelBenchmark.TrainingTokensPerSecond(c, batch: 16, seq: 128, steps: 3);
        Console.WriteLine($"{preset} training step (forward, backward, AdamW), 16 x 128: {train:F0} tokens/s");
        Console.WriteLine($"load average after: {LoadAverage()}");
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "n/a"; }
    }
}
