// Source: ggml's GGUF specification (ggml/docs/gguf.md) and llama.cpp's model loader conventions
// (src/llama-model.cpp: tensor names per architecture, output.weight absent = tied embeddings, stacked *_exps
// expert tensors [n_expert, n_ff, n_embd], deepseek2's attn_k_b / attn_v_b halves of kv_b).
using System.Runtime.InteropServices;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model.Dense;
using NativeReasoner.Nn;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// Loads a model from a GGUF file: the config from its metadata (<see cref="GgufModelConfig"/>), every parameter from
/// the tensor <see cref="GgufTensorNames"/> names, strictly (a missing, unexpected or misshapen tensor is an error).
/// Under <see cref="CheckpointLoadOptions.Inference"/> weights stay as stored: Q8_0/Q4_0/Q4_K/Q6_K projections become
/// packed weights (<see cref="DType.Packed"/>) holding the file's blocks, F16/BF16 matrices stay 16-bit, F32 stays F32;
/// only what cannot be packed (embeddings, DeepSeek's kv_b) is decoded, to bf16. A training load decodes to float32.
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
        var config = ParseConfig(file);
        ICausalLM model;
        using (Tensor.SkipRandomInit()) model = config.Build(new Generator(0), device);
        var notes = new List<string>();
        try
        {
            CopyWeights((Module)model, file, config, options, notes);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        report = new CheckpointLoadReport(notes, HfCheckpoint.WeightBytes((Module)model),
            ResidentMemory.CurrentBytes(), ResidentMemory.PeakBytes());
        return model;
    }

    /// <summary>Whether HF parameter <paramref name="name"/> is stored with llama.cpp's rope row order.</summary>
    public static bool IsRopePermuted(string modelType, string name) => modelType == "llama" &&
        (name.EndsWith(".self_attn.q_proj.weight", StringComparison.Ordinal) ||
         name.EndsWith(".self_attn.q_proj.bias", StringComparison.Ordinal) ||
         name.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal) ||
         name.EndsWith(".self_attn.k_proj.bias", StringComparison.Ordinal));

    /// <summary>A parameter and where its values are: one tensor (or an expert's slice of one), or for MLA's
    /// kv_b_proj in a split file the two halves <see cref="MlaKvB"/> joins.</summary>
    private sealed record Source(string Name, Tensor Target, GgufLocation At, GgufTensorInfo Info,
        GgufTensorInfo? ValueHalf = null);

    private static unsafe void CopyWeights(Module model, GgufFile file, ICausalLMConfig config,
        CheckpointLoadOptions options, List<string> notes)
    {
        int experts = config switch
        {
            DenseConfig d => d.NumExperts,
            DeepseekV3Config ds => ds.NRoutedExperts,
            _ => 0,
        };
        int headDim = config is DenseConfig dc ? dc.HeadDim : 0;
        var own = model.StateDict();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var plan = new List<Source>();
        GgufTensorInfo Expect(string tensor, string name, long[] expected)
        {
            if (!file.Contains(tensor))
                throw new GgufException(file.FilePath, $"tensor '{tensor}'", $"missing (holds '{name}', shape " +
                    $"[{string.Join(", ", expected)}])");
            var info = file.GetTensor(tensor);
            if (!info.Shape.SequenceEqual(expected))
                throw new GgufException(file.FilePath, $"tensor '{tensor}'", $"has shape {info.ShapeText}, " +
                    $"expected [{string.Join(", ", expected)}] for '{name}'");
            if (!GgmlRowConversion.IsReadable(info.Type))
                throw new GgufException(file.FilePath, $"tensor '{tensor}'", $"type {info.Type} cannot be read " +
                    $"(supported: {GgmlRowConversion.ReadableTypes})");
            used.Add(tensor);
            return info;
        }
        foreach (var (name, target) in own)
        {
            var at = GgufTensorNames.ToGguf(name) ?? throw new GgufException(file.FilePath, $"parameter '{name}'",
                "has no GGUF tensor name");
            if (config is DeepseekV3Config ds && at.Tensor.EndsWith(MlaKvB.JoinedSuffix, StringComparison.Ordinal) &&
                !file.Contains(at.Tensor))
            {
                string block = MlaKvB.BlockOf(at.Tensor);
                int h = ds.NumAttentionHeads, r = ds.KvLoraRank;
                var key = Expect(block + MlaKvB.KeySuffix, name, [h, r, ds.QkNopeHeadDim]);
                var value = Expect(block + MlaKvB.ValueSuffix, name, [h, ds.VHeadDim, r]);
                plan.Add(new Source(name, target, at, key, value));
                continue;
            }
            long[] expected = at.IsExpertSlice
                ? [experts, target.Shape[0], target.Shape[1]]
                : target.Shape.ToArray().Select(d => (long)d).ToArray();
            plan.Add(new Source(name, target, at, Expect(at.Tensor, name, expected)));
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
        void Count(SortedDictionary<string, int> d, string key) => d[key] = d.GetValueOrDefault(key) + 1;
        foreach (var (name, target, at, info, valueHalf) in plan)
        {
            if (valueHalf is not null)
            {
                // MLA's kv_b is multiplied as a matrix at decode, so it stays float32 (see PackedWeights).
                var ds = (DeepseekV3Config)config;
                float[] keyB = DecodeTensor(file, info), valueB = DecodeTensor(file, valueHalf);
                Fill(target, destination => MlaKvB.Join(keyB, valueB, MemoryMarshal.Cast<byte, float>(destination),
                    ds.NumAttentionHeads, ds.QkNopeHeadDim, ds.VHeadDim, ds.KvLoraRank));
                if (info.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
                    Count(decoded, info.Type.ToString());
                continue;
            }
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
                    headDim, toGguf: false);
            }
            var storage = asStored ? StoredForm(name, target, info.Type) : Stored.Float32;
            switch (storage)
            {
                case Stored.Packed:
                    {
                        var format = QuantisedFormat(info.Type)!.Value;
                        ((Parameter)target).StoreAsPackedUninitialized(format);
                        Count(kept, "packed " + format.Name());
                        break;
                    }
                case Stored.Float16 or Stored.BFloat16:
                    ((Parameter)target).StoreAsUninitialized(storage == Stored.Float16 ? DType.Float16
                        : DType.BFloat16);
                    Count(kept, info.Type is GgmlType.F16 or GgmlType.BF16 ? info.Type.ToString()
                        : $"{info.Type} as BF16");
                    break;
                default:
                    if (info.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
                        Count(decoded, info.Type.ToString());
                    break;
            }
            fixed (byte* p = permuted)
            {
                byte* from = permuted is null ? source : p;
                Fill(target, destination =>
                {
                    if (storage is Stored.Packed || (storage != Stored.Float32 && IsSixteenBit(info.Type)))
                        new ReadOnlySpan<byte>(from, checked((int)bytes)).CopyTo(destination);
                    else if (storage == Stored.BFloat16)
                        DecodeRowsToBFloat16(info.Type, from, rowBytes, cols,
                            MemoryMarshal.Cast<byte, ushort>(destination));
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
            notes.Add(kept.Count == 0 ? "no 16-bit or packed weights to keep"
                : $"kept {string.Join(", ", kept.Select(kv => $"{kv.Value} {kv.Key}"))} weight matrices as stored; " +
                  "parameters frozen for inference");
        }
    }

    private enum Stored { Float32, Float16, BFloat16, Packed }

    private static bool IsSixteenBit(GgmlType type) => type is GgmlType.F16 or GgmlType.BF16;

    private static QuantFormat? QuantisedFormat(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => QuantFormat.Q8_0,
        GgmlType.Q4_0 => QuantFormat.Q4_0,
        GgmlType.Q4_K => QuantFormat.Q4_K,
        GgmlType.Q6_K => QuantFormat.Q6_K,
        _ => null,
    };

    /// <summary>
    /// How an inference load holds a parameter stored as <paramref name="type"/>: block-quantised projections stay
    /// packed as they lie (<see cref="PackedWeights.IsPackable"/>), F16/BF16 matrices stay 16-bit, other quantised
    /// matrices (embeddings, kv_b) are decoded to bf16; vectors, F32 and the routers stay float32.
    /// </summary>
    private static Stored StoredForm(string name, Tensor target, GgmlType type)
    {
        if (target is not Parameter || target.Rank != 2 || name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal))
            return Stored.Float32;
        if (QuantisedFormat(type) is { } format)
            return PackedWeights.IsPackable(name, target, format) ? Stored.Packed : Stored.BFloat16;
        return type switch
        {
            GgmlType.F16 => Stored.Float16,
            GgmlType.BF16 => Stored.BFloat16,
            _ => Stored.Float32,
        };
    }

    /// <summary>Every value of a tensor as float32.</summary>
    private static unsafe float[] DecodeTensor(GgufFile file, GgufTensorInfo info)
    {
        long cols = info.Dimensions[0];
        var values = new float[checked((int)info.Shape.Aggregate(1L, (p, x) => p * x))];
        DecodeRows(info.Type, file.GetPointer(info.Name), GgmlTypeInfo.RowBytes(info.Type, cols), cols, values);
        return values;
    }

    private static unsafe void DecodeRowsToBFloat16(GgmlType type, byte* source, long rowBytes, long cols,
        Span<ushort> destination)
    {
        // Through a float32 scratch of a few rows, so no float32 copy of the whole matrix is ever held.
        long rows = destination.Length / cols;
        long chunk = Math.Max(1, (1 << 20) / Math.Max(rowBytes, cols * 4));
        var scratch = new float[chunk * cols];
        for (long r = 0; r < rows; r += chunk)
        {
            long n = Math.Min(chunk, rows - r);
            var part = scratch.AsSpan(0, checked((int)(n * cols)));
            GgmlRowConversion.ToFloat32(type,
                new ReadOnlySpan<byte>(source + r * rowBytes, checked((int)(n * rowBytes))), part);
            var to = destination.Slice(checked((int)(r * cols)), part.Length);
            for (int i = 0; i < part.Length; i++) to[i] = GgmlRowConversion.ToBFloat16(part[i]);
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
        long bytes = target.StorageBytes;
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
