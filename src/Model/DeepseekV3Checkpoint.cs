using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// Hugging Face layout on disk: config.json + model.safetensors, or shards listed by
/// model.safetensors.index.json. Loading checks the tensor set and every shape before copying anything:
/// a missing or unexpected tensor, or a wrong shape, is a <see cref="CheckpointMismatchException"/>
/// naming the tensor (and both shapes). Weights stored as BF16/F16 are widened to float32; DeepSeek-V3/R1 FP8
/// weights (F8_E4M3 + a per-block <c>weight_scale_inv</c>, see <see cref="QuantizationConfig"/>) are dequantised.
/// The multi-token-prediction layer (model.layers.{num_hidden_layers}.*) is skipped, as HF and the
/// official converter do (deepseek-v3-notes 13).
/// </summary>
public static partial class DeepseekV3Checkpoint
{
    public const string ConfigFileName = "config.json";

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex LayerPrefix();

    /// <summary>Reads config.json and the weights of <paramref name="directory"/> into a new float32 model.</summary>
    public static DeepseekV3ForCausalLM Load(string directory, Device? device = null) =>
        Load(directory, device, CheckpointLoadOptions.Training, out _);

    /// <summary>
    /// Reads config.json and the weights of <paramref name="directory"/> into a new model, in the precision
    /// <paramref name="options"/> asks for; <paramref name="report"/> lists what was skipped and the memory held.
    /// </summary>
    public static DeepseekV3ForCausalLM Load(string directory, Device? device, CheckpointLoadOptions options,
        out CheckpointLoadReport report)
    {
        var config = DeepseekV3Config.Load(Path.Combine(directory, ConfigFileName));
        DeepseekV3ForCausalLM model;
        // Every value is loaded below (the load is strict), so the initial draw would be wasted work and memory.
        using (Tensor.SkipRandomInit()) model = new DeepseekV3ForCausalLM(config, new Generator(0), device);
        try
        {
            report = LoadWeights(model, directory, options);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies the checkpoint's tensors into an existing model as float32 (strict: every name and shape must match).
    /// </summary>
    public static void LoadWeights(DeepseekV3ForCausalLM model, string directory) =>
        LoadWeights(model, directory, CheckpointLoadOptions.Training);

    /// <summary>
    /// Copies the checkpoint's tensors into an existing model (strict: every name and shape must match). FP8 weights
    /// (F8_E4M3 with a <c>_scale_inv</c> block scale, possibly in another shard) are dequantised; the
    /// multi-token-prediction layer(s) model.layers.{num_hidden_layers}.* are skipped with a note in the report.
    /// </summary>
    public static CheckpointLoadReport LoadWeights(DeepseekV3ForCausalLM model, string directory,
        CheckpointLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var notes = new List<string>();
        using (var ckpt = SafetensorsCheckpoint.Open(directory))
            CopyWeights(model, directory, ckpt, options, notes);
        // Measured once the checkpoint is unmapped: its pages no longer count as the process's.
        return new CheckpointLoadReport(notes, WeightBytes(model), ResidentMemory.CurrentBytes(),
            ResidentMemory.PeakBytes());
    }

    private static unsafe void CopyWeights(DeepseekV3ForCausalLM model, string directory, SafetensorsCheckpoint ckpt,
        CheckpointLoadOptions options, List<string> notes)
    {
        var quantization = QuantizationConfig.Load(directory);
        var own = model.StateDict();
        var names = new HashSet<string>(ckpt.Names, StringComparer.Ordinal);
        int layers = model.Config.NumHiddenLayers;

        foreach (var name in own.Keys)
            if (!names.Contains(name))
                throw new CheckpointMismatchException($"checkpoint {directory}: tensor '{name}' is missing (the model expects shape {Tensor.FormatShape(own[name].Shape)})");
        var skippedMtp = new SortedSet<int>();
        int skippedMtpTensors = 0;
        foreach (var name in names.OrderBy(n => n, StringComparer.Ordinal))
        {
            if (own.ContainsKey(name)) continue;
            if (IsScaleOfFp8Weight(name, own, ckpt)) continue;
            var m = LayerPrefix().Match(name);
            if (m.Success && int.TryParse(m.Groups[1].Value, out int l) && l >= layers)
            {
                skippedMtp.Add(l);
                skippedMtpTensors++;
                continue; // MTP layer(s)
            }
            if (name == "lm_head.weight" && model.Config.TieWordEmbeddings) continue;               // tied head
            throw new CheckpointMismatchException(
                $"checkpoint {directory}: unexpected tensor '{name}' of shape {ShapeText(ckpt.GetEntry(name).Shape)} (no such parameter in this model)");
        }
        if (skippedMtp.Count > 0)
            notes.Add($"skipped the multi-token-prediction layer{(skippedMtp.Count > 1 ? "s" : "")} " +
                $"{string.Join(", ", skippedMtp.Select(l => $"model.layers.{l}.*"))} ({skippedMtpTensors} tensors): " +
                "it only drafts extra tokens in training and speculative decoding");
        int fp8 = 0;
        foreach (var (name, target) in own)
        {
            var entry = ckpt.GetEntry(name);
            bool same = entry.Shape.Length == target.Rank;
            for (int i = 0; same && i < target.Rank; i++) same = entry.Shape[i] == target.Shape[i];
            if (!same)
                throw new CheckpointMismatchException(
                    $"checkpoint {directory}: tensor '{name}' has shape {ShapeText(entry.Shape)}, the model expects {Tensor.FormatShape(target.Shape)}");
            if (entry.DType == DType.Float8E4M3)
            {
                if (quantization is null)
                    throw new CheckpointMismatchException(
                        $"checkpoint {directory}: tensor '{name}' is F8_E4M3 but config.json has no " +
                        "quantization_config (expected {\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128], ...})");
                fp8++;
            }
            else if (!entry.DType.IsFloating())
                throw new CheckpointMismatchException($"checkpoint {directory}: tensor '{name}' is {entry.DType}, a floating-point weight was expected");
        }
        bool asStored = options.Precision == WeightPrecision.AsStored;
        if (fp8 > 0)
            notes.Add($"dequantised {fp8} FP8 (e4m3) weights with their " +
                $"{quantization!.BlockRows}×{quantization.BlockCols} block scales to {(asStored ? "bfloat16" : "float32")}");
        var kept = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var (name, target) in own)
        {
            var entry = ckpt.GetEntry(name);
            var stored = asStored ? StoredPrecision(name, target, entry.DType) : DType.Float32;
            if (stored != DType.Float32)
            {
                ((Parameter)target).StoreAs(stored);
                kept[stored.ToString()] = kept.GetValueOrDefault(stored.ToString()) + 1;
            }
            int n = checked((int)target.Numel);
            var q = quantization;
            if (entry.DType == DType.Float8E4M3 && stored == DType.BFloat16)
                Fill(target, bytes => Fp8BlockDequant.ReadDequantizedBFloat16(ckpt, name, q!.BlockRows, q.BlockCols,
                    MemoryMarshal.Cast<byte, ushort>(bytes)));
            else if (entry.DType == DType.Float8E4M3)
                Fill(target, bytes => Fp8BlockDequant.ReadDequantized(ckpt, name, q!.BlockRows, q.BlockCols,
                    MemoryMarshal.Cast<byte, float>(bytes)));
            else if (stored != DType.Float32)
                // Same type on both sides: the stored bytes go straight from the mapping into the weight.
                target.Device.Memory.CopyFromHost(ckpt.GetFile(name).GetPointer(name), target.RawPointer,
                    entry.ByteLength);
            else
                Fill(target, bytes => ckpt.ReadFloat32(name, MemoryMarshal.Cast<byte, float>(bytes)));
        }
        if (asStored)
        {
            foreach (var p in model.Parameters()) p.RequiresGrad_(false);
            // The float32 blocks the 16-bit weights replaced sit in the host pool's cache and the C heap; hand them
            // back so the resident memory reflects the model as held.
            ResidentMemory.ReturnFreedMemory();
            notes.Add(kept.Count == 0
                ? "no 16-bit weights to keep: every weight is float32 (the checkpoint's precision)"
                : $"kept {string.Join(", ", kept.Select(kv => $"{kv.Value} {kv.Key}"))} weight matrices as stored; " +
                  "parameters frozen for inference");
        }
    }

    private delegate void FillBytes(Span<byte> destination);

    /// <summary>
    /// Lets <paramref name="fill"/> write a weight's bytes: in place in host memory, through a host staging copy on a
    /// device whose memory the host cannot address.
    /// </summary>
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

    /// <summary>
    /// The type a weight keeps under <see cref="WeightPrecision.AsStored"/>: matrices keep BF16/F16 (FP8 becomes BF16);
    /// vectors and the router's gate stay float32.
    /// </summary>
    private static DType StoredPrecision(string name, Tensor target, DType onDisk)
    {
        if (target is not Parameter || target.Rank != 2 || name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal))
            return DType.Float32;
        return onDisk switch
        {
            DType.BFloat16 or DType.Float8E4M3 => DType.BFloat16,
            DType.Float16 => DType.Float16,
            _ => DType.Float32,
        };
    }

    /// <summary>"X_scale_inv" whose X is one of the model's weights stored as FP8: read with X, not a parameter.</summary>
    private static bool IsScaleOfFp8Weight(string name, IReadOnlyDictionary<string, Tensor> own,
        SafetensorsCheckpoint ckpt)
    {
        if (!name.EndsWith(Fp8BlockDequant.ScaleSuffix, StringComparison.Ordinal)) return false;
        string weight = name[..^Fp8BlockDequant.ScaleSuffix.Length];
        return own.ContainsKey(weight) && ckpt.Contains(weight) && ckpt.GetEntry(weight).DType == DType.Float8E4M3;
    }

    /// <summary>Bytes of the model's weights as held in memory (each tensor's elements × its element size).</summary>
    public static long WeightBytes(DeepseekV3ForCausalLM model) =>
        model.StateDict().Values.Sum(t => t.Numel * t.DType.SizeOf());

    /// <summary>
    /// Writes config.json and the weights (F32, or BF16/F16 for weights kept as stored) under HF names into
    /// <paramref name="directory"/>; shards
    /// when the data exceeds <paramref name="maxShardBytes"/>. Every file is written atomically (a temporary
    /// file renamed into place), weights first and config.json last.
    /// </summary>
    public static unsafe void Save(DeepseekV3ForCausalLM model, string directory, long maxShardBytes = long.MaxValue)
    {
        Directory.CreateDirectory(directory);
        var tensors = new List<SafetensorsTensor>();
        foreach (var (name, t) in model.StateDict())
        {
            // Weights kept as stored (bf16/f16) are written in their own type, the rest as F32.
            var bytes = new byte[t.Numel * t.DType.SizeOf()];
            using (var scope = new TensorScope())
            {
                var c = t.Detach().Contiguous();
                new ReadOnlySpan<byte>(c.RawPointer, bytes.Length).CopyTo(bytes);
            }
            var shape = new long[t.Rank];
            for (int i = 0; i < t.Rank; i++) shape[i] = t.Shape[i];
            tensors.Add(new SafetensorsTensor(name, t.DType, shape, bytes));
        }
        SafetensorsCheckpoint.Write(directory, tensors, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
        WriteAtomically(Path.Combine(directory, ConfigFileName), model.Config.ToJson());
    }

    private static void WriteAtomically(string path, string text)
    {
        string tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            using (var w = new StreamWriter(fs))
            {
                w.Write(text);
                w.Flush();
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
