using System.Text.RegularExpressions;
using NativeReasoner.Kernels;

namespace NativeReasoner.Model;

/// <summary>
/// DeepSeek-V3/R1 checkpoints in Hugging Face layout, read and written by the shared <see cref="HfCheckpoint"/>
/// (strict names and shapes, BF16/F16 kept or widened, FP8 block-dequantised). What is DeepSeek's own: the
/// multi-token-prediction layer (model.layers.{num_hidden_layers}.*) is skipped, as HF and the official converter
/// do (deepseek-v3-notes 13), with a note in the load report.
/// </summary>
public static partial class DeepseekV3Checkpoint
{
    public const string ConfigFileName = CausalLMRegistry.ConfigFileName;

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
        ArgumentNullException.ThrowIfNull(options);
        var config = DeepseekV3Config.Load(Path.Combine(directory, ConfigFileName));
        return HfCheckpoint.Load(() => new DeepseekV3ForCausalLM(config, new Generator(0), device), directory,
            options, out report, name => Ignorable(config, name), DescribeIgnored);
    }

    /// <summary>
    /// Copies the checkpoint's tensors into an existing model as float32 (strict: every name and shape must match).
    /// </summary>
    public static void LoadWeights(DeepseekV3ForCausalLM model, string directory) =>
        LoadWeights(model, directory, CheckpointLoadOptions.Training);

    /// <summary>
    /// Copies the checkpoint's tensors into an existing model (strict: every name and shape must match), skipping
    /// the multi-token-prediction layer(s) with a note in the report.
    /// </summary>
    public static CheckpointLoadReport LoadWeights(DeepseekV3ForCausalLM model, string directory,
        CheckpointLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        return HfCheckpoint.LoadWeights(model, directory, options, name => Ignorable(model.Config, name),
            DescribeIgnored);
    }

    /// <summary>A file tensor the model lacks on purpose: an MTP layer's, or lm_head.weight of a tied model.</summary>
    private static bool Ignorable(DeepseekV3Config config, string name) =>
        MtpLayer(name, config.NumHiddenLayers) is not null ||
        (name == "lm_head.weight" && config.TieWordEmbeddings);

    /// <summary>The layer index of a tensor of a layer past the decoder stack (an MTP layer), or null.</summary>
    private static int? MtpLayer(string name, int layers)
    {
        var m = LayerPrefix().Match(name);
        return m.Success && int.TryParse(m.Groups[1].Value, out int l) && l >= layers ? l : null;
    }

    private static IEnumerable<string> DescribeIgnored(IReadOnlyList<string> ignored)
    {
        var layers = new SortedSet<int>();
        int tensors = 0;
        foreach (var name in ignored)
        {
            var m = LayerPrefix().Match(name);
            if (!m.Success || !int.TryParse(m.Groups[1].Value, out int l)) continue;
            layers.Add(l);
            tensors++;
        }
        if (layers.Count == 0) yield break;
        yield return $"skipped the multi-token-prediction layer{(layers.Count > 1 ? "s" : "")} " +
            $"{string.Join(", ", layers.Select(l => $"model.layers.{l}.*"))} ({tensors} tensors): " +
            "it only drafts extra tokens in training and speculative decoding";
    }

    /// <summary>Bytes of the model's weights as held in memory (each tensor's elements × its element size).</summary>
    public static long WeightBytes(DeepseekV3ForCausalLM model) => HfCheckpoint.WeightBytes(model);

    /// <summary>
    /// Writes config.json and the weights (F32, or BF16/F16 for weights kept as stored) under HF names into
    /// <paramref name="directory"/>; shards when the data exceeds <paramref name="maxShardBytes"/>. Weights first,
    /// config.json last, each file atomically.
    /// </summary>
    public static void Save(DeepseekV3ForCausalLM model, string directory, long maxShardBytes = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(model);
        HfCheckpoint.Save(model, directory, model.Config.ToJson(), maxShardBytes);
    }
}
