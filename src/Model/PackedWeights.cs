// Source: the safetensors format (huggingface/safetensors: U8 tensors, string metadata) with this engine's convention
//         for block-quantised weights; the block layouts are ggml's (src/Kernels/Quant).
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// Which weights of a model are packed (bf16 / Q8_0 / Q4_0 / Q4_K) for inference, and how a checkpoint says so.
/// <para>On disk (<c>nr quantize</c>): a packed weight [N, K] is a safetensors <c>U8</c> tensor of shape
/// [N, RowBytes(K)] under its usual name, its rows the format's blocks as ggml lays them out (bf16 rows are the
/// bytes of a bf16 matrix, so they stay a standard BF16 [N, K] tensor), and the file's <c>__metadata__</c> holds
/// <c>"nr.packed.NAME": "FORMAT N K"</c> (e.g. <c>"q4_k 1536 8960"</c>). Safetensors
/// rather than a new container: the loaders already map it page by page, every other tensor (norms, embeddings,
/// routers) stays a standard F32/BF16 tensor, and any safetensors reader can open the file; the metadata keeps the
/// logical shape, so a file whose bytes do not match it is rejected.</para>
/// <para>Packed: the matrices read only through <see cref="Tensor.Linear"/> — attention and MLP projections,
/// every MoE expert and shared expert, and an untied lm_head. Kept as they are: embeddings (looked up by row),
/// norms and biases (vectors), MoE routers (routing is sensitive to rounding), DeepSeek's kv_b_proj (its halves
/// are multiplied as matrices in the absorbed decode), and matrices whose K is not a multiple of the block.</para>
/// </summary>
public static class PackedWeights
{
    public const string MetadataPrefix = "nr.packed.";

    /// <summary>The packed tensors a checkpoint's metadata declares: name → (format, N, K); malformed entries
    /// throw.</summary>
    public static Dictionary<string, (QuantFormat Format, long Rows, long Cols)> Read(
        IReadOnlyDictionary<string, string> metadata, string where)
    {
        var result = new Dictionary<string, (QuantFormat, long, long)>(StringComparer.Ordinal);
        foreach (var (key, value) in metadata)
        {
            if (!key.StartsWith(MetadataPrefix, StringComparison.Ordinal)) continue;
            string name = key[MetadataPrefix.Length..];
            string[] parts = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || !long.TryParse(parts[1], out long n) || !long.TryParse(parts[2], out long k)
                || n <= 0 || k <= 0)
                throw new CheckpointMismatchException(
                    $"{where}: metadata '{key}' is '{value}', expected 'FORMAT N K' (e.g. 'q4_k 1536 8960')");
            QuantFormat format;
            try { format = QuantFormatInfo.Parse(parts[0]); }
            catch (ArgumentException e)
            {
                throw new CheckpointMismatchException($"{where}: metadata '{key}': {e.Message}");
            }
            if (k % format.BlockSize() != 0)
                throw new CheckpointMismatchException(
                    $"{where}: metadata '{key}': K = {k} is not a multiple of the {format.Name()} block " +
                    $"{format.BlockSize()}");
            result[name] = (format, n, k);
        }
        return result;
    }

    /// <summary>The metadata entry that declares a packed weight.</summary>
    public static KeyValuePair<string, string> MetadataEntry(string name, Tensor weight) =>
        new(MetadataPrefix + name, $"{weight.PackedFormat!.Value.Name()} {weight.Shape[0]} {weight.Shape[1]}");

    /// <summary>True for the weights <see cref="Pack"/> packs (see the class summary for the rule and why).</summary>
    public static bool IsPackable(string name, Tensor weight, QuantFormat format)
    {
        if (weight is not Parameter || weight.Rank != 2 || weight.PackedFormat != null) return false;
        if (weight.Shape[1] % format.BlockSize() != 0) return false;
        if (name.EndsWith(".kv_b_proj.weight", StringComparison.Ordinal)) return false;
        return name.EndsWith("_proj.weight", StringComparison.Ordinal)
            || name.EndsWith(".kv_a_proj_with_mqa.weight", StringComparison.Ordinal)
            || name == "lm_head.weight";
    }

    /// <summary>
    /// The format a weight is packed in when <paramref name="format"/> is asked for, or null when it stays unpacked:
    /// Q4_K falls back to Q4_0 for a K that is a multiple of 32 but not of 256 (llama.cpp also falls back for such
    /// rows; Qwen2.5-0.5B's hidden size 896 is one).
    /// </summary>
    public static QuantFormat? FormatFor(string name, Tensor weight, QuantFormat format)
    {
        if (IsPackable(name, weight, format)) return format;
        if (format == QuantFormat.Q4_K && IsPackable(name, weight, QuantFormat.Q4_0)) return QuantFormat.Q4_0;
        return null;
    }

    /// <summary>
    /// Packs every packable weight of <paramref name="model"/> in <paramref name="format"/> (quantised from its
    /// current values) and returns the names packed and the matrices left unpacked, with the reason; those become
    /// bf16 (routers stay float32). A tensor shared by two names (a tied lm_head) is not packed.
    /// </summary>
    public static (List<string> Packed, List<string> Kept) Pack(Module model, QuantFormat format)
    {
        if (!format.CanQuantize())
            throw new ArgumentException($"{format.Name()} is decode-only: weights cannot be quantised to it");
        var state = model.StateDict();
        var shared = state.GroupBy(kv => kv.Value).Where(g => g.Count() > 1).SelectMany(g => g.Select(kv => kv.Key))
            .ToHashSet(StringComparer.Ordinal);
        var packed = new List<string>();
        var kept = new List<string>();
        foreach (var (name, t) in state)
        {
            if (t.Rank != 2) continue;
            if (!shared.Contains(name) && FormatFor(name, t, format) is { } use)
            {
                ((Parameter)t).StoreAsPacked(use);
                packed.Add(use == format ? name
                    : $"{name} as {use.Name()} (K = {t.Shape[1]} is not a multiple of 256)");
            }
            else
            {
                // Kept matrices other than the routers go to bf16 (what an inference load of a bf16 checkpoint holds).
                bool router = name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal);
                if (!router && t is Parameter p && t.DType == DType.Float32) p.StoreAs(DType.BFloat16);
                kept.Add($"{name} {Tensor.FormatShape(t.Shape)} as {(router ? "float32" : t.DType.ToString())} " +
                    $"({KeptReason(name, t, format, shared)})");
            }
        }
        return (packed, kept);
    }

    private static string KeptReason(string name, Tensor t, QuantFormat format, HashSet<string> shared)
    {
        if (shared.Contains(name)) return "shared with another name (tied)";
        if (t.Shape[1] % format.BlockSize() != 0)
            return $"K = {t.Shape[1]} is not a multiple of the {format.Name()} block {format.BlockSize()}";
        if (name.EndsWith(".kv_b_proj.weight", StringComparison.Ordinal)) return "multiplied as a matrix at decode";
        if (name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)) return "embedding, looked up by row";
        return "not a linear projection (router or other)";
    }
}
