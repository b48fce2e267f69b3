using System.CommandLine;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using NativeReasoner.Nn;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    /// <summary>
    /// `nr bench make-model --config FILE --dtype FORMAT --out DIR`: a model directory of any supported config whose
    /// linear weights are random packed blocks (levels random, scales chosen so weights stay of order 0.01), the other
    /// matrices random bf16, norms 1, biases 0. For measuring real shapes (a 1.5B model) without a float32 copy or a
    /// quantisation pass: what a decode reads and holds is the same as for a quantised checkpoint of that shape.
    /// </summary>
    private static Command BuildMakeModel()
    {
        var config = new Option<string>("--config")
        {
            Description = "config.json (or a directory holding one).",
            Required = true
        };
        var dtype = new Option<string>("--dtype") { Description = "bf16, q8_0, q4_0 or q4_k.", Required = true };
        var output = new Option<string>("--out") { Description = "Directory to write.", Required = true };
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1 };
        var command = new Command("make-model",
            "Write a random model directory with packed weights of a given config (for benchmarks).")
        {
            config, dtype, output, seed,
        };
        command.SetAction(parse =>
        {
            try
            {
                long bytes = MakeRandomPackedModel(parse.GetValue(config)!,
                    QuantFormatInfo.Parse(parse.GetValue(dtype)!),
                    parse.GetValue(output)!, parse.GetValue(seed));
                Console.WriteLine($"wrote {parse.GetValue(output)}: {bytes / 1048576.0:F1} MiB of weights");
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or ArgumentException or IOException
                                          or NotSupportedException)
            {
                Console.Error.WriteLine($"bench make-model: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    internal static long MakeRandomPackedModel(string configPath, QuantFormat format, string outDir, int seed)
    {
        if (!format.CanQuantize()) throw new ArgumentException($"{format.Name()} is decode-only");
        var config = CausalLMRegistry.LoadConfig(configPath);
        var rng = new Random(seed);
        ICausalLM model;
        using (Tensor.SkipRandomInit())
            model = config is DeepseekV3Config ds ? new DeepseekV3ForCausalLM(ds, new Generator((ulong)seed))
                : new DenseForCausalLM((DenseConfig)config, new Generator((ulong)seed));
        using (model)
        {
            var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
            foreach (var (name, t) in ((Module)model).StateDict())
            {
                if (!seen.Add(t)) continue; // a tied head: filled once, as the embedding
                if (t.Rank == 2 && t is Parameter p && PackedWeights.FormatFor(name, t, format) is { } use)
                {
                    p.StoreAsPackedUninitialized(use);
                    t.CopyFromHost(RandomPackedRows(rng, use, t.Shape[0], t.Shape[1]));
                }
                else if (t.Rank == 2 && t is Parameter q && !name.EndsWith(".mlp.gate.weight",
                    StringComparison.Ordinal))
                {
                    q.StoreAsUninitialized(DType.BFloat16);
                    t.CopyFromHost(RandomPackedRows(rng, QuantFormat.BF16, t.Shape[0], t.Shape[1]));
                }
                else if (t.DType == DType.Float32)
                {
                    // Norm weights 1; biases and the router's correction bias 0; router matrices small.
                    bool norm = name.EndsWith("norm.weight", StringComparison.Ordinal);
                    var values = new float[t.Numel];
                    if (norm) Array.Fill(values, 1f);
                    else if (t.Rank == 2)
                        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() - 0.5) * 0.04f;
                    t.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
                }
            }
            model.Save(outDir);
            return HfCheckpoint.WeightBytes((Module)model);
        }
    }

    /// <summary>
    /// rows packed rows of k random weights: random levels with fp16 scales in a band that keeps |w| ≲ 0.03 (bf16:
    /// uniform in ±0.03).
    /// </summary>
    private static byte[] RandomPackedRows(Random rng, QuantFormat format, long rows, long k)
    {
        var bytes = new byte[rows * format.RowBytes(k)];
        rng.NextBytes(bytes);
        int bb = format.BlockBytes();
        for (long b = 0; b < bytes.Length / bb; b++)
        {
            long at = b * bb;
            float u = 1f + (float)rng.NextDouble();
            switch (format)
            {
                case QuantFormat.BF16:
                    float w = (float)(rng.NextDouble() - 0.5) * 0.06f;
                    ushort bits = (ushort)(BitConverter.SingleToUInt32Bits(w) >> 16);
                    bytes[at] = (byte)bits;
                    bytes[at + 1] = (byte)(bits >> 8);
                    break;
                case QuantFormat.Q8_0: WriteHalf(bytes, at, u / 4096f); break;
                case QuantFormat.Q4_0: WriteHalf(bytes, at, u / 512f); break;
                case QuantFormat.Q4_K:
                    WriteHalf(bytes, at, u / 16384f);
                    WriteHalf(bytes, at + 2, u / 32768f);
                    break;
            }
        }
        return bytes;
    }

    private static void WriteHalf(byte[] bytes, long at, float value)
    {
        ushort bits = BitConverter.HalfToUInt16Bits((Half)value);
        bytes[at] = (byte)bits;
        bytes[at + 1] = (byte)(bits >> 8);
    }
}
