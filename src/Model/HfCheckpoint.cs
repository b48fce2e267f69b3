using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>
/// Weights of any family in Hugging Face layout: model.safetensors or shards listed by
/// model.safetensors.index.json, tensors under the model's own parameter names. Loading is strict and checks the
/// whole tensor set and every shape before copying anything: a missing or unexpected tensor, or a wrong shape, is a
/// <see cref="CheckpointMismatchException"/> naming the tensor and the expected shape. BF16/F16 weights are widened.
/// </summary>
public static class HfCheckpoint
{
    /// <summary>
    /// Copies the checkpoint's tensors into <paramref name="model"/>. <paramref name="ignorable"/> names file tensors
    /// the model may lack on purpose (a tied lm_head.weight, DeepSeek's MTP layers).
    /// </summary>
    public static unsafe void LoadWeights(Module model, string directory, Func<string, bool>? ignorable = null)
    {
        using var ckpt = SafetensorsCheckpoint.Open(directory);
        var own = model.StateDict();
        var names = new HashSet<string>(ckpt.Names, StringComparer.Ordinal);
        foreach (var name in own.Keys)
            if (!names.Contains(name))
                throw new CheckpointMismatchException(
                    $"checkpoint {directory}: tensor '{name}' is missing (the model expects shape " +
                        $"{Tensor.FormatShape(own[name].Shape)})");
        foreach (var name in names.OrderBy(n => n, StringComparer.Ordinal))
        {
            if (own.ContainsKey(name) || (ignorable?.Invoke(name) ?? false)) continue;
            throw new CheckpointMismatchException(
                $"checkpoint {directory}: unexpected tensor '{name}' of shape " +
                    $"{ShapeText(ckpt.GetEntry(name).Shape)} (no such parameter in this model)");
        }
        foreach (var (name, target) in own)
        {
            var entry = ckpt.GetEntry(name);
            bool same = entry.Shape.Length == target.Rank;
            for (int i = 0; same && i < target.Rank; i++) same = entry.Shape[i] == target.Shape[i];
            if (!same)
                throw new CheckpointMismatchException(
                    $"checkpoint {directory}: tensor '{name}' has shape {ShapeText(entry.Shape)}, the model expects " +
                        $"{Tensor.FormatShape(target.Shape)}");
            if (!entry.DType.IsFloating())
                throw new CheckpointMismatchException($"checkpoint {directory}: tensor '{name}' is {entry.DType}, a " +
                    $"floating-point weight was expected");
        }
        foreach (var (name, target) in own)
            ckpt.ReadFloat32(name, new Span<float>(target.Data, checked((int)target.Numel)));
    }

    /// <summary>
    /// Writes the weights (F32, the model's names) and then config.json into <paramref name="directory"/>; shards when
    /// the data exceeds <paramref name="maxShardBytes"/>. config.json is written last and atomically.
    /// </summary>
    public static unsafe void Save(Module model, string directory, string configJson,
        long maxShardBytes = long.MaxValue)
    {
        Directory.CreateDirectory(directory);
        var tensors = new List<SafetensorsTensor>();
        foreach (var (name, t) in model.StateDict())
        {
            var bytes = new byte[t.Numel * sizeof(float)];
            using (var scope = new TensorScope())
            {
                var c = t.Detach().Contiguous();
                new ReadOnlySpan<byte>(c.Data, bytes.Length).CopyTo(bytes);
            }
            var shape = new long[t.Rank];
            for (int i = 0; i < t.Rank; i++) shape[i] = t.Shape[i];
            tensors.Add(new SafetensorsTensor(name, DType.Float32, shape, bytes));
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        SafetensorsCheckpoint.Write(directory, tensors, maxShardBytes, metadata);
        string path = Path.Combine(directory, CausalLMRegistry.ConfigFileName);
        string tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            File.WriteAllText(tmp, configJson);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
