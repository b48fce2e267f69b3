using System.Runtime.InteropServices;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// Weights of any family in Hugging Face layout: model.safetensors or shards listed by
/// model.safetensors.index.json, tensors under the model's own parameter names. Loading is strict and checks the
/// whole tensor set and every shape before copying anything: a missing or unexpected tensor, or a wrong shape, is a
/// <see cref="CheckpointMismatchException"/> naming the tensor and the expected shape.
/// <para>Precision: under <see cref="CheckpointLoadOptions.Training"/> every weight is widened to float32 (FP8
/// weights with a per-block <c>weight_scale_inv</c>, see <see cref="QuantizationConfig"/>, are dequantised); under
/// <see cref="CheckpointLoadOptions.Inference"/> matrices keep their BF16/F16 type (FP8 becomes BF16) while vectors
/// and MoE routers (<c>*.mlp.gate.weight</c>) stay float32, and every parameter is frozen.</para>
/// </summary>
public static class HfCheckpoint
{
    /// <summary>
    /// Copies the checkpoint's tensors into <paramref name="model"/> in the precision <paramref name="options"/> asks
    /// for. <paramref name="ignorable"/> names file tensors the model may lack on purpose (a tied lm_head.weight,
    /// DeepSeek's multi-token-prediction layers); <paramref name="describeIgnored"/> turns the ones skipped into
    /// report notes. The report's memory figures are taken once the checkpoint is unmapped.
    /// </summary>
    public static CheckpointLoadReport LoadWeights(Module model, string directory, CheckpointLoadOptions options,
        Func<string, bool>? ignorable = null, Func<IReadOnlyList<string>, IEnumerable<string>>? describeIgnored = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var notes = new List<string>();
        using (var ckpt = SafetensorsCheckpoint.Open(directory))
            CopyWeights(model, directory, ckpt, options, ignorable, describeIgnored, notes);
        // Measured once the checkpoint is unmapped: its pages no longer count as the process's.
        return new CheckpointLoadReport(notes, WeightBytes(model), ResidentMemory.CurrentBytes(),
            ResidentMemory.PeakBytes());
    }

    /// <summary>
    /// Builds a model with <paramref name="create"/> without drawing its initial values (every value is loaded, the
    /// load is strict), then loads <paramref name="directory"/>'s weights into it; the model is disposed on failure.
    /// </summary>
    public static TModel Load<TModel>(Func<TModel> create, string directory, CheckpointLoadOptions options,
        out CheckpointLoadReport report, Func<string, bool>? ignorable = null,
        Func<IReadOnlyList<string>, IEnumerable<string>>? describeIgnored = null) where TModel : Module
    {
        TModel model;
        // Skipped draws leave the float32 blocks untouched, so they never become resident before the load fills
        // them or replaces them with the stored 16-bit copy.
        using (Tensor.SkipRandomInit()) model = create();
        try
        {
            report = LoadWeights(model, directory, options, ignorable, describeIgnored);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static unsafe void CopyWeights(Module model, string directory, SafetensorsCheckpoint ckpt,
        CheckpointLoadOptions options, Func<string, bool>? ignorable,
        Func<IReadOnlyList<string>, IEnumerable<string>>? describeIgnored, List<string> notes)
    {
        var quantization = QuantizationConfig.Load(directory);
        var packedWeights = PackedWeights.Read(ckpt.Metadata, $"checkpoint {directory}");
        var own = model.StateDict();
        var names = new HashSet<string>(ckpt.Names, StringComparer.Ordinal);
        // MoE experts stored fused (transformers ≥ 5) load into the per-expert parameters from slices.
        var fused = FusedExpertWeights.Resolve(own, ckpt, directory);
        var fusedTensors = new HashSet<string>(fused.Values.Select(s => s.Tensor), StringComparer.Ordinal);

        foreach (var name in own.Keys)
            if (!names.Contains(name) && !fused.ContainsKey(name))
                throw new CheckpointMismatchException(
                    $"checkpoint {directory}: tensor '{name}' is missing (the model expects shape " +
                        $"{Tensor.FormatShape(own[name].Shape)})");
        var ignored = new List<string>();
        foreach (var name in names.OrderBy(n => n, StringComparer.Ordinal))
        {
            if (own.ContainsKey(name) || fusedTensors.Contains(name) || IsScaleOfFp8Weight(name, own, ckpt)) continue;
            if (ignorable?.Invoke(name) ?? false)
            {
                ignored.Add(name);
                continue;
            }
            throw new CheckpointMismatchException(
                $"checkpoint {directory}: unexpected tensor '{name}' of shape " +
                    $"{ShapeText(ckpt.GetEntry(name).Shape)} (no such parameter in this model)");
        }
        if (ignored.Count > 0 && describeIgnored is not null) notes.AddRange(describeIgnored(ignored));

        int fp8 = 0;
        foreach (var (name, target) in own)
        {
            if (fused.ContainsKey(name)) continue; // shape and type checked by FusedExpertWeights.Resolve
            var entry = ckpt.GetEntry(name);
            if (packedWeights.TryGetValue(name, out var packedAs))
            {
                CheckPacked(directory, name, entry, target, packedAs, options);
                continue;
            }
            bool same = entry.Shape.Length == target.Rank;
            for (int i = 0; same && i < target.Rank; i++) same = entry.Shape[i] == target.Shape[i];
            if (!same)
                throw new CheckpointMismatchException(
                    $"checkpoint {directory}: tensor '{name}' has shape {ShapeText(entry.Shape)}, the model expects " +
                        $"{Tensor.FormatShape(target.Shape)}");
            if (entry.DType == DType.Float8E4M3)
            {
                if (quantization is null)
                    throw new CheckpointMismatchException(
                        $"checkpoint {directory}: tensor '{name}' is F8_E4M3 but config.json has no " +
                        "quantization_config (expected {\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]," +
                        " ...})");
                fp8++;
            }
            else if (!entry.DType.IsFloating())
                throw new CheckpointMismatchException($"checkpoint {directory}: tensor '{name}' is " +
                    $"{DTypeText(entry.DType)}, a floating-point weight was expected");
        }

        bool asStored = options.Precision == WeightPrecision.AsStored;
        if (fp8 > 0)
            notes.Add($"dequantised {fp8} FP8 (e4m3) weights with their " +
                $"{quantization!.BlockRows}×{quantization.BlockCols} block scales to " +
                (asStored ? "bfloat16" : "float32"));
        var kept = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var (name, target) in own)
        {
            if (fused.TryGetValue(name, out var slice))
            {
                var fusedEntry = ckpt.GetEntry(slice.Tensor);
                var keep = asStored ? StoredPrecision(name, target, fusedEntry.DType) : DType.Float32;
                if (keep != DType.Float32)
                {
                    ((Parameter)target).StoreAs(keep);
                    kept[keep.ToString()] = kept.GetValueOrDefault(keep.ToString()) + 1;
                }
                CopySlice(ckpt, slice, fusedEntry.DType, target, keep);
                continue;
            }
            var entry = ckpt.GetEntry(name);
            if (packedWeights.TryGetValue(name, out var packing))
            {
                // The packed rows go into the weight as they lie in the file.
                ((Parameter)target).StoreAsPackedUninitialized(packing.Format);
                string key = "packed " + packing.Format.Name();
                kept[key] = kept.GetValueOrDefault(key) + 1;
                CopyReleasingPages(ckpt, name, target, entry.ByteLength);
                ckpt.ReleasePages(name);
                continue;
            }
            var stored = asStored ? StoredPrecision(name, target, entry.DType) : DType.Float32;
            if (stored != DType.Float32)
            {
                ((Parameter)target).StoreAsUninitialized(stored); // every value is filled below
                kept[stored.ToString()] = kept.GetValueOrDefault(stored.ToString()) + 1;
            }
            var q = quantization;
            if (entry.DType == DType.Float8E4M3 && stored == DType.BFloat16)
                Fill(target, bytes => Fp8BlockDequant.ReadDequantizedBFloat16(ckpt, name, q!.BlockRows, q.BlockCols,
                    MemoryMarshal.Cast<byte, ushort>(bytes)));
            else if (entry.DType == DType.Float8E4M3)
                Fill(target, bytes => Fp8BlockDequant.ReadDequantized(ckpt, name, q!.BlockRows, q.BlockCols,
                    MemoryMarshal.Cast<byte, float>(bytes)));
            else if (stored != DType.Float32)
                CopyReleasingPages(ckpt, name, target, entry.ByteLength);
            else
                Fill(target, bytes => ckpt.ReadFloat32(name, MemoryMarshal.Cast<byte, float>(bytes)));
            // The mapped pages just read would otherwise stay resident beside their copy until the checkpoint is
            // closed, so the load's peak would be the file plus the model; dropping them keeps it near the model.
            ckpt.ReleasePages(name);
            if (entry.DType == DType.Float8E4M3) ckpt.ReleasePages(name + Fp8BlockDequant.ScaleSuffix);
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

    /// <summary>
    /// A packed weight declared by the metadata: a U8 tensor [N, RowBytes(K)] for the model's [N, K] weight, and an
    /// inference load (no float32 master weights can be made from it).
    /// </summary>
    private static void CheckPacked(string directory, string name, SafetensorsEntry entry, Tensor target,
        (QuantFormat Format, long Rows, long Cols) packed, CheckpointLoadOptions options)
    {
        string where = $"checkpoint {directory}: tensor '{name}'";
        if (target is not Parameter || target.Rank != 2 || target.Shape[0] != packed.Rows
            || target.Shape[1] != packed.Cols)
            throw new CheckpointMismatchException($"{where} is packed {packed.Format.Name()} [{packed.Rows}, " +
                $"{packed.Cols}], the model expects {Tensor.FormatShape(target.Shape)}");
        bool bf16 = packed.Format == QuantFormat.BF16;
        long cols = bf16 ? packed.Cols : packed.Format.RowBytes(packed.Cols);
        var dtype = bf16 ? DType.BFloat16 : DType.Packed;
        if (entry.DType != dtype || entry.Shape.Length != 2 || entry.Shape[0] != packed.Rows || entry.Shape[1] != cols)
            throw new CheckpointMismatchException($"{where} is {DTypeText(entry.DType)} " +
                $"{ShapeText(entry.Shape)}; packed {packed.Format.Name()} [{packed.Rows}, {packed.Cols}] needs " +
                $"{DTypeText(dtype)} [{packed.Rows}, {cols}]");
        if (options.Precision != WeightPrecision.AsStored)
            throw new CheckpointMismatchException($"{where} is packed {packed.Format.Name()}: such a checkpoint is " +
                "for inference; load it with CheckpointLoadOptions.Inference (nr logits, nr generate) or quantise " +
                "from the float checkpoint again");
    }

    /// <summary>
    /// Same type on both sides: the stored bytes go straight from the mapping into the weight, a slice at a time,
    /// each slice's mapped pages dropped once copied, so a large tensor (an embedding) is never resident twice.
    /// </summary>
    private static unsafe void CopyReleasingPages(SafetensorsCheckpoint ckpt, string name, Tensor target, long bytes)
    {
        const long slice = 16L << 20;
        var file = ckpt.GetFile(name);
        byte* source = file.GetPointer(name);
        byte* destination = (byte*)target.RawPointer;
        for (long done = 0; done < bytes; done += slice)
        {
            long n = Math.Min(slice, bytes - done);
            target.Device.Memory.CopyFromHost(source + done, destination + done, n);
            file.ReleasePages(name, done, n);
        }
    }

    private delegate void FillBytes(Span<byte> destination);

    /// <summary>
    /// Copies <paramref name="target"/>'s elements from a run of a fused tensor: the bytes as they are when the
    /// weight keeps the file's 16-bit type, widened to float32 otherwise.
    /// </summary>
    private static unsafe void CopySlice(SafetensorsCheckpoint ckpt, FusedExpertWeights.Slice slice, DType onDisk,
        Tensor target, DType stored)
    {
        int size = onDisk.SizeOf();
        byte* source = ckpt.GetFile(slice.Tensor).GetPointer(slice.Tensor) + slice.ElementOffset * size;
        long bytes = target.Numel * size;
        if (stored == onDisk)
            target.Device.Memory.CopyFromHost(source, target.RawPointer, bytes);
        else
            Fill(target, destination => Widen(onDisk, new ReadOnlySpan<ushort>(source, checked((int)target.Numel)),
                MemoryMarshal.Cast<byte, float>(destination)));
    }

    /// <summary>BF16 or F16 elements (host order) widened exactly to float32.</summary>
    private static void Widen(DType onDisk, ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (onDisk == DType.BFloat16)
            for (int i = 0; i < source.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
        else
            for (int i = 0; i < source.Length; i++) destination[i] = (float)BitConverter.UInt16BitsToHalf(source[i]);
    }

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
    /// The type a weight keeps under <see cref="WeightPrecision.AsStored"/>: matrices keep BF16/F16 (FP8 becomes
    /// BF16); vectors and MoE routers (<c>*.mlp.gate.weight</c> in DeepSeek and Qwen3-MoE) stay float32, because
    /// routing decisions are sensitive to rounding and the router is tiny.
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

    /// <summary>
    /// "X_scale_inv" whose X is one of the model's weights stored as FP8: read with X, not a parameter.
    /// </summary>
    private static bool IsScaleOfFp8Weight(string name, IReadOnlyDictionary<string, Tensor> own,
        SafetensorsCheckpoint ckpt)
    {
        if (!name.EndsWith(Fp8BlockDequant.ScaleSuffix, StringComparison.Ordinal)) return false;
        string weight = name[..^Fp8BlockDequant.ScaleSuffix.Length];
        return own.ContainsKey(weight) && ckpt.Contains(weight) && ckpt.GetEntry(weight).DType == DType.Float8E4M3;
    }

    /// <summary>Bytes of the model's weights as held in memory (each tensor's elements × its element size).</summary>
    public static long WeightBytes(Module model) => model.StateDict().Values.Sum(t => t.StorageBytes);

    /// <summary>
    /// Writes the weights (F32, or BF16/F16 for weights kept as stored) under the model's names and then
    /// <paramref name="configJson"/> as config.json into <paramref name="directory"/>; shards when the data exceeds
    /// <paramref name="maxShardBytes"/>. Every file is written atomically (a temporary file renamed into place),
    /// weights first and config.json last, so a directory with a config.json holds complete weights.
    /// </summary>
    public static unsafe void Save(Module model, string directory, string configJson,
        long maxShardBytes = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(configJson);
        Directory.CreateDirectory(directory);
        var tensors = new List<SafetensorsTensor>();
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        foreach (var (name, t) in model.StateDict())
        {
            var bytes = new byte[t.StorageBytes];
            using (var scope = new TensorScope())
            {
                var c = t.Detach().Contiguous();
                new ReadOnlySpan<byte>(c.RawPointer, bytes.Length).CopyTo(bytes);
            }
            var shape = new long[t.Rank];
            for (int i = 0; i < t.Rank; i++) shape[i] = t.Shape[i];
            var dtype = t.DType;
            if (t.PackedFormat is { } packed)
            {
                // Stored as its packed rows (see PackedWeights) plus a metadata entry: U8 [N, RowBytes(K)], or for
                // bf16 rows (the same bytes as a bf16 matrix) a standard BF16 [N, K] tensor.
                if (packed == QuantFormat.BF16) dtype = DType.BFloat16;
                else shape[1] = packed.RowBytes(t.Shape[1]);
                var entry = PackedWeights.MetadataEntry(name, t);
                metadata[entry.Key] = entry.Value;
            }
            tensors.Add(new SafetensorsTensor(name, dtype, shape, bytes));
        }
        SafetensorsCheckpoint.Write(directory, tensors, maxShardBytes, metadata);
        WriteAtomically(Path.Combine(directory, CausalLMRegistry.ConfigFileName), configJson);
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

    private static string DTypeText(DType dtype) => dtype == DType.Packed ? "U8" : dtype.ToString();

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
