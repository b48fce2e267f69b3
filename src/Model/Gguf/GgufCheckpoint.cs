// Source: ggml's GGUF specification (ggml/docs/gguf.md) and llama.cpp's model loader conventions
// (src/llama-model.cpp: tensor names per architecture, output.weight absent = tied embeddings, stacked *_exps
// expert tensors [n_expert, n_ff, n_embd]).
using System.Runtime.InteropServices;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Model.Dense;
using NativeReasoner.Nn;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// Loads a model from a GGUF file: the config from its metadata (<see cref="GgufModelConfig"/>), every parameter from
/// the tensor <see cref="GgufTensorNames"/> names, strictly (a missing, unexpected or misshapen tensor is an error).
/// Under <see cref="CheckpointLoadOptions.Inference"/> F16/BF16 matrices stay 16-bit as stored; F32 stays F32;
/// the block-quantised types (Q8_0, Q4_0, Q4_K, Q6_K) are decoded to float32.
/// </summary>
public static class GgufCheckpoint
{
    public const string Extension = ".gguf";

    public static bool IsGgufPath(string path) =>
        path.EndsWith(Extension, StringComparison.OrdinalIgnoreCase) && File.Exists(path);

    /// <summary>The config a GGUF file describes.</summary>
    public static ICausalLMConfig LoadConfig(string path)
    {
        using var file = GgufFile.Open(path);
        return ParseConfig(file);
    }

    private static ICausalLMConfig ParseConfig(GgufFile file)
    {
        try
        {
            return CausalLMRegistry.ParseConfig(GgufModelConfig.ToConfigJson(file));
        }
        catch (ModelConfigException e)
        {
            throw new GgufException(file.FilePath, "model metadata", e.Message, e);
        }
    }

    public static ICausalLM Load(string path, Device? device, CheckpointLoadOptions options,
        out CheckpointLoadReport report)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var file = GgufFile.Open(path);
        var config = (DenseConfig)ParseConfig(file);
        DenseForCausalLM model;
        using (Tensor.SkipRandomInit()) model = new DenseForCausalLM(config, new Generator(0), device);
        var notes = new List<string>();
        try
        {
            CopyWeights(model, file, config, options, notes);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        report = new CheckpointLoadReport(notes, HfCheckpoint.WeightBytes(model), ResidentMemory.CurrentBytes(),
            ResidentMemory.PeakBytes());
        return model;
    }

    /// <summary>Whether HF parameter <paramref name="name"/> is stored with llama.cpp's rope row order.</summary>
    public static bool IsRopePermuted(string modelType, string name) => modelType == "llama" &&
        (name.EndsWith(".self_attn.q_proj.weight", StringComparison.Ordinal) ||
         name.EndsWith(".self_attn.q_proj.bias", StringComparison.Ordinal) ||
         name.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal) ||
         name.EndsWith(".self_attn.k_proj.bias", StringComparison.Ordinal));

    private static unsafe void CopyWeights(DenseForCausalLM model, GgufFile file, DenseConfig config,
        CheckpointLoadOptions options, List<string> notes)
    {
        var own = model.StateDict();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var plan = new List<(string Name, Tensor Target, GgufLocation At, GgufTensorInfo Info)>();
        foreach (var (name, target) in own)
        {
            var at = GgufTensorNames.ToGguf(name) ?? throw new GgufException(file.FilePath, $"parameter '{name}'",
                "has no GGUF tensor name");
            if (!file.Contains(at.Tensor))
                throw new GgufException(file.FilePath, $"tensor '{at.Tensor}'", $"missing (holds '{name}', shape " +
                    $"{Tensor.FormatShape(target.Shape)})");
            var info = file.GetTensor(at.Tensor);
            long[] expected = at.IsExpertSlice
                ? [config.NumExperts, target.Shape[0], target.Shape[1]]
                : target.Shape.ToArray().Select(d => (long)d).ToArray();
            if (!info.Shape.SequenceEqual(expected))
                throw new GgufException(file.FilePath, $"tensor '{at.Tensor}'", $"has shape {info.ShapeText}, " +
                    $"expected [{string.Join(", ", expected)}] for '{name}'");
            if (!GgmlRowConversion.IsReadable(info.Type))
                throw new GgufException(file.FilePath, $"tensor '{at.Tensor}'", $"type {info.Type} cannot be read " +
                    $"(supported: {GgmlRowConversion.ReadableTypes})");
            used.Add(at.Tensor);
            plan.Add((name, target, at, info));
        }
        // Read into the config (llama3 rope), not a parameter.
        used.Add(GgufModelConfig.RopeFreqsTensor);
        foreach (var t in file.Tensors)
            if (!used.Contains(t.Name))
                throw new GgufException(file.FilePath, $"tensor '{t.Name}'", $"unexpected: no parameter of this " +
                    $"{config.ModelType} model reads it");

        bool asStored = options.Precision == WeightPrecision.AsStored;
        var kept = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var decoded = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var (name, target, at, info) in plan)
        {
            long cols = info.Dimensions[0];
            long rowBytes = GgmlTypeInfo.RowBytes(info.Type, cols);
            long bytes = target.Numel / cols * rowBytes;
            byte* source = file.GetPointer(at.Tensor) + (at.IsExpertSlice ? at.Expert * bytes : 0);
            byte[]? permuted = null;
            if (IsRopePermuted(config.ModelType, name))
            {
                permuted = new byte[bytes];
                long rb = target.Rank == 1 ? GgmlTypeInfo.RowBytes(info.Type, 1) : rowBytes;
                LlamaRopePermutation.PermuteRows(new ReadOnlySpan<byte>(source, checked((int)bytes)), permuted, rb,
                    config.HeadDim, toGguf: false);
            }
            var keep = asStored && target is Parameter && target.Rank == 2 &&
                !name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal)
                ? info.Type switch
                {
                    GgmlType.F16 => DType.Float16,
                    GgmlType.BF16 => DType.BFloat16,
                    _ => DType.Float32,
                }
                : DType.Float32;
            if (keep != DType.Float32)
            {
                ((Parameter)target).StoreAsUninitialized(keep);
                kept[info.Type.ToString()] = kept.GetValueOrDefault(info.Type.ToString()) + 1;
            }
            else if (info.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
                decoded[info.Type.ToString()] = decoded.GetValueOrDefault(info.Type.ToString()) + 1;
            fixed (byte* p = permuted)
            {
                byte* from = permuted is null ? source : p;
                Fill(target, destination =>
                {
                    if (keep != DType.Float32)
                        new ReadOnlySpan<byte>(from, checked((int)bytes)).CopyTo(destination);
                    else
                        DecodeRows(info.Type, from, rowBytes, cols, MemoryMarshal.Cast<byte, float>(destination));
                });
            }
            if (permuted is null && !at.IsExpertSlice) file.ReleasePages(at.Tensor, 0, info.ByteLength);
        }
        if (decoded.Count > 0)
            notes.Add($"decoded {string.Join(", ", decoded.Select(kv => $"{kv.Value} {kv.Key}"))} tensors to float32");
        if (asStored)
        {
            foreach (var p in model.Parameters()) p.RequiresGrad_(false);
            ResidentMemory.ReturnFreedMemory();
            notes.Add(kept.Count == 0 ? "no 16-bit weights to keep"
                : $"kept {string.Join(", ", kept.Select(kv => $"{kv.Value} {kv.Key}"))} weight matrices as stored; " +
                  "parameters frozen for inference");
        }
    }

    private static unsafe void DecodeRows(GgmlType type, byte* source, long rowBytes, long cols,
        Span<float> destination)
    {
        // A few rows at a time keeps every span far below 2 GiB whatever the tensor's size.
        long rows = destination.Length / cols;
        long chunk = Math.Max(1, (1 << 24) / Math.Max(rowBytes, cols * 4));
        for (long r = 0; r < rows; r += chunk)
        {
            long n = Math.Min(chunk, rows - r);
            GgmlRowConversion.ToFloat32(type,
                new ReadOnlySpan<byte>(source + r * rowBytes, checked((int)(n * rowBytes))),
                destination.Slice(checked((int)(r * cols)), checked((int)(n * cols))));
        }
    }

    private delegate void FillBytes(Span<byte> destination);

    private static unsafe void Fill(Tensor target, FillBytes fill)
    {
        long bytes = target.Numel * target.DType.SizeOf();
        if (target.Device.IsHost)
        {
            fill(new Span<byte>(target.RawPointer, checked((int)bytes)));
            return;
        }
        var staging = new byte[bytes];
        fill(staging);
        fixed (byte* p = staging) target.Device.Memory.CopyFromHost(p, target.RawPointer, bytes);
    }
}
