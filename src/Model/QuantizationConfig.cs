// The quantization_config block of the DeepSeek-V3/R1 release's config.json (HF transformers' FineGrainedFP8Config
// reads the same keys): quant_method "fp8", fmt "e4m3", weight_block_size [128, 128], activation_scheme "dynamic".
using System.Text.Json;
using NativeReasoner.IO;

namespace NativeReasoner.Model;

/// <summary>
/// How a checkpoint's weights are quantised. Only block-scaled float8_e4m3fn weights with dynamic activation scaling
/// are understood (what DeepSeek-V3/R1 ship); any other method, format or scheme is an error naming the value, never
/// a silent misreading of the bytes.
/// </summary>
public sealed record QuantizationConfig(int BlockRows, int BlockCols)
{
    /// <summary>The release's layout: 128×128 blocks.</summary>
    public static QuantizationConfig DeepSeekFp8 { get; } =
        new(Fp8BlockDequant.DefaultBlock, Fp8BlockDequant.DefaultBlock);

    /// <summary>
    /// The quantization_config of the config.json in <paramref name="directory"/>; null when the file or the key is
    /// absent (or null).
    /// </summary>
    /// <exception cref="ModelConfigException">Malformed JSON or an unsupported quantization.</exception>
    public static QuantizationConfig? Load(string directory)
    {
        string path = Path.Combine(directory, "config.json");
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = Dense.ConfigFields.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("quantization_config", out var q)
                || q.ValueKind == JsonValueKind.Null)
                return null;
            return Parse(q);
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{path}: not valid JSON ({e.Message})", e);
        }
        catch (ModelConfigException e)
        {
            throw new ModelConfigException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Interprets one quantization_config object.</summary>
    public static QuantizationConfig Parse(JsonElement q)
    {
        if (q.ValueKind != JsonValueKind.Object)
            throw new ModelConfigException($"config: quantization_config must be an object, got {q.GetRawText()}");
        string method = Text(q, "quant_method") ?? "";
        if (method != "fp8")
            throw new ModelConfigException(
                $"config: quantization_config.quant_method '{method}' is not supported " +
                "(only 'fp8': DeepSeek-V3 block FP8)");
        string fmt = Text(q, "fmt") ?? "e4m3";
        if (fmt != "e4m3")
            throw new ModelConfigException($"config: quantization_config.fmt '{fmt}' is not supported (only 'e4m3')");
        string scheme = Text(q, "activation_scheme") ?? "dynamic";
        if (scheme != "dynamic")
            throw new ModelConfigException(
                $"config: quantization_config.activation_scheme '{scheme}' is not supported (only 'dynamic': "
                + "activations are not quantised, weights are dequantised)");
        if (!q.TryGetProperty("weight_block_size", out var b) || b.ValueKind == JsonValueKind.Null) return DeepSeekFp8;
        if (b.ValueKind != JsonValueKind.Array || b.GetArrayLength() != 2
            || !PositiveInt(b[0], out int rows) || !PositiveInt(b[1], out int cols))
            throw new ModelConfigException(
                $"config: quantization_config.weight_block_size must be two positive integers, got {b.GetRawText()}");
        return new QuantizationConfig(rows, cols);
    }

    private static bool PositiveInt(JsonElement e, out int value)
    {
        value = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out value) && value > 0;
    }

    private static string? Text(JsonElement o, string key)
    {
        if (!o.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.String)
            throw new ModelConfigException($"config: quantization_config.{key} must be a string, got {e.GetRawText()}");
        return e.GetString();
    }
}
