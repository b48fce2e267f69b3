using System.CommandLine;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Model;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    /// <summary>
    /// `nr bench model`: the whole-model numbers of the CPU-performance issue on a preset (bench-tiny by
    /// default): training-step tokens/s (forward, cross-entropy, backward, AdamW, router-bias update) and
    /// greedy decode tokens/s through the compressed MLA cache, on random weights and tokens.
    /// </summary>
    private static Command BuildModel()
    {
        var json = new Option<bool>("--json") { Description = "One JSON object per line on stdout." };
        var threads = new Option<int>("--threads") { Description = "Worker threads (default: all cores)." };
        var preset = new Option<string>("--preset") { Description = "Model preset.", DefaultValueFactory = _ => "bench-tiny" };
        var batch = new Option<int>("--batch") { Description = "Sequences per step.", DefaultValueFactory = _ => 16 };
        var seq = new Option<int>("--seq") { Description = "Training sequence length.", DefaultValueFactory = _ => 128 };
        var steps = new Option<int>("--steps") { Description = "Timed training steps (the median is reported).", DefaultValueFactory = _ => 15 };
        var warmup = new Option<double>("--warmup")
        {
            Description = "Warm-up seconds before each measurement (the tiered JIT settles; at least 3 training steps / 1 decode run).",
            DefaultValueFactory = _ => 6.0
        };
        var prompt = new Option<int>("--prompt") { Description = "Decode: prompt tokens per sequence (prefill, not timed).", DefaultValueFactory = _ => 32 };
        var newTokens = new Option<int>("--new-tokens") { Description = "Decode: tokens generated per sequence.", DefaultValueFactory = _ => 96 };
        var rounds = new Option<int>("--rounds") { Description = "Decode: timed runs (the best is reported).", DefaultValueFactory = _ => 3 };
        var only = new Option<string>("--only") { Description = "train or decode (default: both)." };
        var modelDir = new Option<string>("--model")
        {
            Description = "Decode a model directory (any family; packed, bf16 or float32 weights as an inference " +
                "load holds them) instead of a preset; implies --only decode.",
        };
        var command = new Command("model",
            "Training-step and decode throughput of a model preset (tokens/s, random weights): warm-up, then the median step / best run.")
        {
            json, threads, preset, batch, seq, steps, warmup, prompt, newTokens, rounds, only, modelDir,
        };
        command.SetAction(parse =>
        {
            string? part = parse.GetValue(only);
            if (part is not null and not "train" and not "decode")
            {
                Console.Error.WriteLine($"nr bench model: --only must be 'train' or 'decode' (got '{part}')");
                return 2;
            }
            if (parse.GetValue(threads) > 0) CpuParallel.SetThreadCount(parse.GetValue(threads));
            int nThreads = CpuParallel.Threads;
            if (parse.GetValue(modelDir) is { } dir)
                return DecodeDirectory(dir, parse.GetValue(batch), parse.GetValue(prompt), parse.GetValue(newTokens),
                    parse.GetValue(rounds), parse.GetValue(warmup), parse.GetValue(json), nThreads);
            DeepseekV3Config c;
            try { c = DeepseekV3Config.Preset(parse.GetValue(preset)!); }
            catch (ModelConfigException e)
            {
                Console.Error.WriteLine($"nr bench model: {e.Message}");
                return 2;
            }
            int B = parse.GetValue(batch), T = parse.GetValue(seq), P = parse.GetValue(prompt), N = parse.GetValue(newTokens);
            double warm = parse.GetValue(warmup);
            bool asJson = parse.GetValue(json);
            try
            {
                if (part is null or "train")
                {
                    var r = ModelBenchmark.MeasureTraining(c, B, T, parse.GetValue(steps), warmupSteps: 3, warmupSeconds: warm);
                    if (asJson)
                        Console.WriteLine(Json(("op", "model_train"), ("shape", new[] { B, T }), ("ms", r.MedianMs), ("tokens_per_s", r.TokensPerSecond),
                            ("best_ms", r.BestMs), ("steps", r.Steps), ("warmup_steps", r.WarmupSteps), ("threads", nThreads), ("preset", parse.GetValue(preset)!)));
                    else
                        Console.WriteLine($"{parse.GetValue(preset)} training step (forward, backward, AdamW), {B} x {T}: {F(r.TokensPerSecond, "F0")} tokens/s " +
                            $"(median {F(r.MedianMs, "F1")} ms of {r.Steps} steps, best {F(r.BestMs, "F1")} ms; {r.WarmupSteps} warm-up steps; {nThreads} threads)");
                }
                if (part is null or "decode")
                {
                    var r = ModelBenchmark.MeasureDecode(c, B, P, N, parse.GetValue(rounds), warm);
                    if (asJson)
                        Console.WriteLine(Json(("op", "model_decode"), ("shape", new[] { B, P, N }), ("ms", r.MsPerStep), ("tokens_per_s", r.TokensPerSecond),
                            ("decode_steps", r.Steps), ("rounds", r.Rounds), ("warmup_runs", r.WarmupRuns), ("cache_bytes_per_token", r.CacheBytesPerToken),
                            ("threads", nThreads), ("preset", parse.GetValue(preset)!)));
                    else
                        Console.WriteLine($"{parse.GetValue(preset)} decode, batch {B}, prompt {P}, {N} new tokens: {F(r.TokensPerSecond, "F0")} tokens/s " +
                            $"({F(r.MsPerStep, "F2")} ms per step, best of {r.Rounds} runs after {r.WarmupRuns} warm-up runs; compressed cache {r.CacheBytesPerToken} bytes/token)");
                }
            }
            catch (ArgumentOutOfRangeException e)
            {
                Console.Error.WriteLine($"nr bench model: {e.Message}");
                return 2;
            }
            return 0;
        });
        return command;
    }

    /// <summary>`bench model --model DIR`: decode throughput of a model directory, with its weight bytes per
    /// token.</summary>
    private static int DecodeDirectory(string dir, int batch, int prompt, int newTokens, int rounds, double warmup,
        bool asJson, int nThreads)
    {
        try
        {
            long fileBytes = Directory.GetFiles(dir, "*.safetensors").Sum(f => new FileInfo(f).Length);
            using var model = CausalLMRegistry.Load(dir, Device.Cpu, CheckpointLoadOptions.Inference, out var loaded);
            model.Eval();
            var r = ModelBenchmark.MeasureDecode(model, batch, prompt, newTokens, rounds, warmup, 0);
            long peak = NativeReasoner.IO.ResidentMemory.PeakBytes();
            if (asJson)
                Console.WriteLine(Json(("op", "model_decode"), ("shape", new[] { batch, prompt, newTokens }),
                    ("ms", r.MsPerStep), ("tokens_per_s", r.TokensPerSecond), ("decode_steps", r.Steps),
                    ("rounds", r.Rounds), ("warmup_runs", r.WarmupRuns), ("weight_bytes", loaded.WeightBytes),
                    ("file_bytes", fileBytes), ("resident_after_load", loaded.ResidentBytes), ("peak_resident", peak),
                    ("threads", nThreads), ("model", dir)));
            else
                Console.WriteLine($"{dir} decode, batch {batch}, prompt {prompt}, {newTokens} new tokens: " +
                    $"{F(r.TokensPerSecond, "F1")} tokens/s ({F(r.MsPerStep, "F2")} ms per step, best of " +
                    $"{r.Rounds} runs after {r.WarmupRuns} warm-up runs; {nThreads} threads)\n" +
                    $"weights held {loaded.WeightBytes / 1048576.0:F1} MiB, files {fileBytes / 1048576.0:F1} MiB, " +
                    $"resident {loaded.ResidentBytes / 1048576.0:F1} MiB after load, peak {peak / 1048576.0:F1} MiB " +
                    $"({(double)peak / Math.Max(1, fileBytes):F2}x the files)");
            return 0;
        }
        catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or ArgumentException
                                  or IOException or NativeReasoner.IO.SafetensorsException)
        {
            Console.Error.WriteLine($"bench model: {e.Message}");
            return 2;
        }
    }
}
