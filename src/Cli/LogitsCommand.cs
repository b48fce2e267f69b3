using System.CommandLine;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr logits`: scores input_ids (I64 [B, T]) from a safetensors file with a checkpoint of any supported family
/// (deepseek_v3, deepseek_v2, qwen2, llama, qwen3, qwen3_moe) and writes logits (F32 [B, T, V], or [B, T−P, V] with
/// --decode-from P) to a safetensors file.
/// </summary>
public static class LogitsCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint directory (config.json + model.safetensors or shards).", Required = true };
        var input = new Option<string>("--input") { Description = "Safetensors file holding input_ids (I64 [B, T]).", Required = true };
        var output = new Option<string>("--out") { Description = "Safetensors file to write logits (F32) to.", Required = true };
        var decodeFrom = new Option<int?>("--decode-from") { Description = "Prefill P tokens, then decode one token at a time through the model's cache (MLA or GQA K/V); writes the logits of positions P..T-1." };
        var device = new Option<string>("--device") { Description = "Backend: cpu (default), reference, ilgpu, cuda, cuda:emu.", DefaultValueFactory = _ => "cpu" };
        var bf16 = new Option<bool>("--bf16")
        {
            Description = "bf16 matrix products with fp32 accumulation (autocast; expert GEMMs too, attention on the " +
                          "bf16 flash kernels on CUDA; norms and softmax stay fp32).",
        };
        var fp32Weights = new Option<bool>("--fp32-weights")
        {
            Description = "Widen 16-bit and FP8 weights to float32 copies " +
                "(default: weights stay as the checkpoint stores them, FP8 as bf16).",
        };
        var command = new Command("logits",
            "Compute the logits of a checkpoint (deepseek_v3, deepseek_v2, qwen2, llama, qwen3, qwen3_moe) for given token ids.")
            { model, input, output, decodeFrom, device, bf16, fp32Weights };
        command.SetAction(parse =>
        {
            try
            {
                Run(parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(decodeFrom),
                    parse.GetValue(device)!, parse.GetValue(bf16), parse.GetValue(fp32Weights));
                return 0;
            }
            catch (Exception e) when (e is ModelConfigException or CheckpointMismatchException or SafetensorsException
                                      or ArgumentException or IOException or NotSupportedException)
            {
                Console.Error.WriteLine($"nr logits: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    public static void Run(string modelDir, string inputPath, string outPath, int? decodeFrom, string deviceName,
        bool bf16 = false, bool fp32Weights = false)
    {
        using var autocast = bf16 ? Autocast.Bf16() : null;
        var device = Device.Parse(deviceName);
        long[] ids;
        int batch, length;
        using (var f = SafetensorsFile.Open(inputPath))
        {
            if (!f.Contains("input_ids")) throw new ArgumentException($"{inputPath} has no tensor 'input_ids'");
            var e = f.GetEntry("input_ids");
            if (e.Shape.Length != 2) throw new ArgumentException($"{inputPath}: input_ids must be [B, T], got {ShapeText(e.Shape)}");
            batch = checked((int)e.Shape[0]);
            length = checked((int)e.Shape[1]);
            ids = f.ReadInt64("input_ids");
        }
        using var m = CausalLMRegistry.Load(modelDir, device,
            fp32Weights ? CheckpointLoadOptions.Training : CheckpointLoadOptions.Inference, out var report);
        LoadReportText.Print("logits", report);
        m.Eval();
        var config = m.Config;
        var logits = LogitsRunner.Run(m, ids, batch, length, decodeFrom);
        int rows = decodeFrom is { } p ? length - p : length;
        var bytes = new byte[logits.Length * sizeof(float)];
        Buffer.BlockCopy(logits, 0, bytes, 0, bytes.Length);
        SafetensorsWriter.Write(outPath,
            [new SafetensorsTensor("logits", DType.Float32, [batch, rows, config.VocabSize], bytes)]);
    }

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
