using System.CommandLine;
using NativeReasoner.IO;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr quantize --model DIR --out DIR --dtype bf16|q8_0|q4_0|q4_k`: writes a model directory whose linear weights
/// are packed in the chosen format (<see cref="PackedWeights"/> says which and how they are stored), copies the
/// tokenizer files, then reloads the result as `nr logits` would and prints its logit error against the float32
/// model on a fixed prompt set (seeded token ids).
/// </summary>
public static class QuantizeCommand
{
    /// <summary>Files beside the checkpoint that a model directory carries over unchanged.</summary>
    private static readonly string[] s_companions =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
        "prompt_template.json", "vocab.json", "merges.txt",
    ];

    public static Command Build()
    {
        var model = new Option<string>("--model")
        {
            Description = "Checkpoint directory to quantise.",
            Required = true
        };
        var output = new Option<string>("--out")
        {
            Description = "Directory to write the quantised model to.",
            Required = true
        };
        var dtype = new Option<string>("--dtype") { Description = "bf16, q8_0, q4_0 or q4_k.", Required = true };
        var prompts = new Option<int>("--prompts")
        {
            Description = "Prompts in the logit-error set.",
            DefaultValueFactory = _ => 4
        };
        var length = new Option<int>("--length")
        {
            Description = "Tokens per prompt in the logit-error set.",
            DefaultValueFactory = _ => 32
        };
        var command = new Command("quantize",
            "Pack a model's linear weights in bf16, q8_0, q4_0 or q4_k and report the logit error against float32.")
            { model, output, dtype, prompts, length };
        command.SetAction(parse =>
        {
            try
            {
                var report = Run(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(dtype)!,
                    parse.GetValue(prompts), parse.GetValue(length));
                Console.WriteLine(report.Text());
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException
                                      or ArgumentException or IOException or NotSupportedException)
            {
                Console.Error.WriteLine($"nr quantize: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>What <see cref="Run"/> did and the logit error it measured.</summary>
    public sealed record Report(QuantFormat Format, int Packed, IReadOnlyList<string> Kept, long WeightBytes,
        long ReferenceWeightBytes, double RelativeRmsError, double MaxAbsError, double Top1Agreement, int Prompts,
        int Length)
    {
        public string Text() =>
            $"quantized to {Format.Name()}: {Packed} weight matrices packed, {Kept.Count} kept as they were\n" +
            string.Concat(Kept.Select(k => $"  kept {k}\n")) +
            $"weights: {WeightBytes / 1048576.0:F1} MiB held after reloading " +
            $"(float32: {ReferenceWeightBytes / 1048576.0:F1} MiB)\n" +
            $"logit error vs float32 on {Prompts} prompts x {Length} tokens: relative rms {RelativeRmsError:E3}, " +
            $"max abs {MaxAbsError:E3}, top-1 agreement {100 * Top1Agreement:F1} %";
    }

    public static Report Run(string modelDir, string outDir, string dtypeName, int prompts = 4, int length = 32)
    {
        var format = QuantFormatInfo.Parse(dtypeName);
        if (!format.CanQuantize())
            throw new ArgumentException($"--dtype {format.Name()} is decode-only; choose bf16, q8_0, q4_0 or q4_k");
        if (prompts < 1 || length < 1)
            throw new ArgumentException($"--prompts and --length must be ≥ 1, got {prompts} and {length}");
        if (Path.GetFullPath(modelDir).TrimEnd('/') == Path.GetFullPath(outDir).TrimEnd('/'))
            throw new ArgumentException("--out must differ from --model (the source checkpoint is read while writing)");

        long[] ids;
        float[] reference;
        int packed;
        List<string> kept;
        long referenceBytes;
        using (var m = CausalLMRegistry.Load(modelDir, Device.Cpu, CheckpointLoadOptions.Training, out var loaded))
        {
            m.Eval();
            referenceBytes = loaded.WeightBytes;
            int vocab = m.Config.VocabSize;
            var rng = new Random(1234);
            ids = new long[prompts * length];
            for (int i = 0; i < ids.Length; i++) ids[i] = rng.Next(vocab);
            reference = LogitsRunner.Run(m, ids, prompts, length);
            (var packedNames, kept) = PackedWeights.Pack((Nn.Module)m, format);
            packed = packedNames.Count;
            m.Save(outDir);
        }
        foreach (var file in s_companions)
        {
            string src = Path.Combine(modelDir, file);
            if (File.Exists(src)) File.Copy(src, Path.Combine(outDir, file), overwrite: true);
        }

        using var q = CausalLMRegistry.Load(outDir, Device.Cpu, CheckpointLoadOptions.Inference, out var report);
        q.Eval();
        float[] actual = LogitsRunner.Run(q, ids, prompts, length);
        double num = 0, den = 0, maxAbs = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = (double)actual[i] - reference[i];
            num += d * d;
            den += (double)reference[i] * reference[i];
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
            if (double.IsNaN(d)) maxAbs = double.NaN;
        }
        int v = q.Config.VocabSize, agree = 0, rows = prompts * length;
        for (int r = 0; r < rows; r++)
            if (ArgMax(reference, r * v, v) == ArgMax(actual, r * v, v)) agree++;
        double relative = Math.Sqrt(num / Math.Max(den, 1e-300));
        return new Report(format, packed, kept, report.WeightBytes, referenceBytes, relative, maxAbs,
            (double)agree / rows, prompts, length);
    }

    private static int ArgMax(float[] x, int start, int n)
    {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[start + i] > x[start + best]) best = i;
        return best;
    }
}
