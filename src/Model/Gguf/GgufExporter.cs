// Source: llama.cpp's convert_hf_to_gguf.py conventions: 1-D tensors, norms and MoE routers (ffn_gate_inp) stay F32,
// matrices take the requested type (falling back to F16 when a row is not a whole number of Q8_0 blocks), experts are
// stacked per layer, llama q/k rows are permuted for ggml's rope, general.file_type names the matrices' type; DeepSeek's
// kv_b_proj is split into attn_k_b / attn_v_b (DeepseekV2Model.modify_tensors).
using NativeReasoner.Kernels;

namespace NativeReasoner.Model.Gguf;

/// <summary>Writes a model of a supported family, with its tokenizer, as one GGUF file.</summary>
public static class GgufExporter
{
    /// <summary>The types a model can be exported at (--dtype).</summary>
    public static GgmlType ParseType(string name) => name.ToLowerInvariant() switch
    {
        "f32" => GgmlType.F32,
        "f16" => GgmlType.F16,
        "bf16" => GgmlType.BF16,
        "q8_0" => GgmlType.Q8_0,
        "q4_0" => GgmlType.Q4_0,
        "q4_k" => GgmlType.Q4_K,
        _ => throw new ArgumentException($"--dtype '{name}' is not an export type: expected f32, f16, bf16, q8_0, " +
            "q4_0 or q4_k"),
    };

    /// <summary>
    /// Exports <paramref name="model"/> to <paramref name="path"/> with matrices in <paramref name="type"/>. The
    /// tokenizer (a byte-level BPE tokenizer.json, with tokenizer_config.json's chat template and special tokens) is
    /// written when given. Returns notes on what was adapted (fallback types).
    /// </summary>
    public static IReadOnlyList<string> Export(ICausalLM model, string path, GgmlType type, string name,
        string? tokenizerJson = null, string? tokenizerConfigJson = null, string tokenizerSource = "tokenizer.json")
    {
        ArgumentNullException.ThrowIfNull(model);
        var notes = new List<string>();
        // general.* first, as llama.cpp's writer orders them: the architecture keys go to a side list first.
        var keys = new GgufMetadata(path);
        var config = model.Config;
        string arch;
        if (config is DeepseekV3Config deepseek)
        {
            notes.AddRange(DeepseekGgufConfig.AddModelKeys(deepseek, keys));
            arch = DeepseekGgufConfig.Architecture;
        }
        else arch = GgufModelConfig.AddModelKeys(config, keys);
        var metadata = new GgufMetadata(path);
        metadata.Add(GgufFormat.ArchitectureKey, arch);
        metadata.Add("general.name", name);
        metadata.Add("general.file_type", GgufModelConfig.FileType(type));
        if (type is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K)
            metadata.Add("general.quantization_version", 2u);
        foreach (var (k, v) in keys.Entries)
            if (k != GgufFormat.ArchitectureKey) metadata.Add(k, v);
        long? bos = config switch
        {
            Dense.DenseConfig dc => dc.BosTokenId,
            DeepseekV3Config dsc => dsc.BosTokenId,
            _ => null,
        };
        long? eos = config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : null;
        if (tokenizerJson is not null)
            GgufTokenizer.AddTokenizerKeys(tokenizerJson, tokenizerConfigJson, metadata, tokenizerSource, bos, eos,
                config.VocabSize);
        else notes.Add("no tokenizer written (none given): llama.cpp needs one to load the file");

        var headDim = config is Dense.DenseConfig d ? d.HeadDim : 0;
        var state = ((Nn.Module)model).StateDict();
        var tensors = new List<GgufTensorSource>();

        // One GGUF tensor: its numpy-order shape, whether it is a matrix (takes the requested type), and its values
        // as one or more float arrays of whole rows, produced when the writer reaches it.
        void Add(string ggufName, long[] shape, bool matrix, Func<IEnumerable<float[]>> values, bool permute)
        {
            long cols = shape[^1];
            var tensorType = matrix ? type : GgmlType.F32;
            // Rows that are not whole blocks take the next type whose blocks fit, as llama.cpp's tools do.
            if (GgmlTypeInfo.TryGetBlock(tensorType, out int block, out _) && cols % block != 0)
            {
                var fallback = cols % 32 == 0 && tensorType == GgmlType.Q4_K ? GgmlType.Q8_0 : GgmlType.F16;
                notes.Add($"{ggufName}: rows of {cols} are not whole {tensorType} blocks of {block}; written as " +
                    $"{fallback}");
                tensorType = fallback;
            }
            long elements = shape.Aggregate(1L, (p, x) => p * x);
            long rowBytes = GgmlTypeInfo.RowBytes(tensorType, cols);
            tensors.Add(new GgufTensorSource(ggufName, tensorType, shape, rowBytes * (elements / cols), stream =>
            {
                foreach (var part in values())
                {
                    var encoded = new byte[rowBytes * (part.Length / cols)];
                    GgmlRowConversion.FromFloat32(tensorType, part, encoded, (int)cols);
                    if (permute)
                    {
                        // A 1-D bias permutes element by element, a matrix row by row.
                        var reordered = new byte[encoded.Length];
                        long rb = shape.Length == 1 ? encoded.Length / part.Length : rowBytes;
                        LlamaRopePermutation.PermuteRows(encoded, reordered, rb, headDim, toGguf: true);
                        encoded = reordered;
                    }
                    stream.Write(encoded);
                }
            }));
        }

        var stacked = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (hfName, tensor) in state)
        {
            var at = GgufTensorNames.ToGguf(hfName) ?? throw new ModelConfigException(
                $"parameter '{hfName}' has no GGUF tensor name");
            if (at.IsExpertSlice && !stacked.Add(at.Tensor)) continue;
            if (config is DeepseekV3Config ds && at.Tensor.EndsWith(MlaKvB.JoinedSuffix, StringComparison.Ordinal))
            {
                // Split as llama.cpp's MLA files hold it; both halves come from one read of kv_b.
                string blockName = MlaKvB.BlockOf(at.Tensor);
                int h = ds.NumAttentionHeads, n = ds.QkNopeHeadDim, v = ds.VHeadDim, r = ds.KvLoraRank;
                var kvB = tensor;
                Add(blockName + MlaKvB.KeySuffix, [h, r, n], true,
                    () => [MlaKvB.Split(kvB.ToArray(), h, n, v, r).KeyB], false);
                Add(blockName + MlaKvB.ValueSuffix, [h, v, r], true,
                    () => [MlaKvB.Split(kvB.ToArray(), h, n, v, r).ValueB], false);
                continue;
            }
            var parts = at.IsExpertSlice
                ? state.Where(kv => GgufTensorNames.ToGguf(kv.Key) is { } l && l.Tensor == at.Tensor)
                    .OrderBy(kv => GgufTensorNames.ToGguf(kv.Key)!.Value.Expert).Select(kv => kv.Value).ToList()
                : [tensor];
            var shape = at.IsExpertSlice
                ? new long[] { parts.Count, tensor.Shape[0], tensor.Shape[1] }
                : tensor.Shape.ToArray().Select(x => (long)x).ToArray();
            bool matrix = tensor.Rank == 2 && !at.Tensor.EndsWith("ffn_gate_inp.weight", StringComparison.Ordinal);
            Add(at.Tensor, shape, matrix, () => parts.Select(p => p.ToArray()),
                GgufCheckpoint.IsRopePermuted(config.ModelType, hfName));
        }
        if (config is Dense.DenseConfig { Rope.Type: "llama3" } l3)
        {
            var factors = GgufModelConfig.Llama3RopeFactors(l3.HeadDim, l3.Rope.Theta, l3.Rope.Factor,
                l3.Rope.LowFreqFactor, l3.Rope.HighFreqFactor, l3.Rope.OriginalMaxPositionEmbeddings);
            tensors.Insert(0, GgufTensorSource.FromBytes(GgufModelConfig.RopeFreqsTensor, GgmlType.F32,
                [factors.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(factors.AsSpan()).ToArray()));
        }
        GgufWriter.Write(path, metadata, tensors);
        return notes;
    }
}
