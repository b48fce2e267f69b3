// Source: HF transformers' AutoModelForCausalLM dispatch on config.json's model_type (models/auto/modeling_auto.py).
using NativeReasoner.Kernels;
using System.Text.Json;
using NativeReasoner.Model.Dense;
using NativeReasoner.Model.Llama;
using NativeReasoner.Model.Qwen2;
using NativeReasoner.Model.Qwen3;
using NativeReasoner.Model.Qwen3Moe;

namespace NativeReasoner.Model;

/// <summary>
/// Picks the implementation for a checkpoint from config.json's <c>model_type</c>: deepseek_v3 and deepseek_v2
/// (MLA + MoE, one implementation with the router chosen by the config), the
/// dense families qwen2, llama and qwen3, and qwen3_moe (the Qwen3 decoder with sparse MLPs). Known families not
/// implemented yet, and unknown types, are a <see cref="ModelConfigException"/> that lists the supported types.
/// </summary>
public static class CausalLMRegistry
{
    public const string ConfigFileName = "config.json";

    public static IReadOnlyList<string> SupportedModelTypes =>
        [DeepseekV3Config.ModelTypeName, DeepseekV3Config.V2ModelTypeName, Qwen2Family.ModelType, LlamaFamily.ModelType,
            Qwen3Family.ModelType, Qwen3MoeFamily.ModelType];

    /// <summary>HF model types that are recognised but have no implementation here yet.</summary>
    public static IReadOnlyList<string> KnownUnsupportedModelTypes => [];

    /// <summary>Parses config.json text into the config of its family (validated).</summary>
    public static ICausalLMConfig ParseConfig(string json)
    {
        using var doc = ConfigFields.Parse(json);
        var root = doc.RootElement;
        string supported = string.Join(", ", SupportedModelTypes);
        if (!ConfigFields.Present(root, "model_type", out var mt) || mt.ValueKind != JsonValueKind.String)
            throw new ModelConfigException($"config: no string 'model_type' (supported: {supported})");
        string type = mt.GetString()!;
        return type switch
        {
            DeepseekV3Config.ModelTypeName or DeepseekV3Config.V2ModelTypeName => DeepseekV3Config.FromJson(json),
            Qwen2Family.ModelType => Qwen2Family.FromJson(root),
            LlamaFamily.ModelType => LlamaFamily.FromJson(root),
            Qwen3Family.ModelType => Qwen3Family.FromJson(root),
            Qwen3MoeFamily.ModelType => Qwen3MoeFamily.FromJson(root),
            _ when KnownUnsupportedModelTypes.Contains(type) =>
                throw new ModelConfigException($"config: model_type '{type}' is a known family that is not " +
                    $"implemented yet (supported: {supported})"),
            _ => throw new ModelConfigException($"config: model_type '{type}' is not supported (supported: " +
                $"{supported})"),
        };
    }

    /// <summary>
    /// Reads config.json in <paramref name="pathOrDirectory"/> (or the file itself); errors name the file.
    /// </summary>
    public static ICausalLMConfig LoadConfig(string pathOrDirectory)
    {
        if (Gguf.GgufCheckpoint.IsGgufPath(pathOrDirectory)) return Gguf.GgufCheckpoint.LoadConfig(pathOrDirectory);
        string path = Directory.Exists(pathOrDirectory)
            ? Path.Combine(pathOrDirectory, ConfigFileName)
            : pathOrDirectory;
        if (!File.Exists(path)) throw new ModelConfigException($"config: {path} does not exist");
        try
        {
            return ParseConfig(File.ReadAllText(path));
        }
        catch (ModelConfigException e)
        {
            throw new ModelConfigException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Loads the model of <paramref name="directory"/> (config.json + safetensors) onto <paramref name="device"/>
    /// with float32 weights (what training needs).
    /// </summary>
    public static ICausalLM Load(string directory, Device? device = null) =>
        Load(directory, device, CheckpointLoadOptions.Training, out _);

    /// <summary>
    /// Loads the model of <paramref name="directory"/> in the precision <paramref name="options"/> asks for (see
    /// <see cref="HfCheckpoint"/>: under <see cref="CheckpointLoadOptions.Inference"/> every family keeps 16-bit
    /// matrices as stored and dequantises FP8); <paramref name="report"/> lists what was skipped and the memory held.
    /// </summary>
    public static ICausalLM Load(string directory, Device? device, CheckpointLoadOptions options,
        out CheckpointLoadReport report)
    {
        ArgumentNullException.ThrowIfNull(options);
        // A .gguf file holds config and weights in one file.
        if (Gguf.GgufCheckpoint.IsGgufPath(directory))
            return Gguf.GgufCheckpoint.Load(directory, device, options, out report);
        var config = LoadConfig(directory);
        if (config is DeepseekV3Config) return DeepseekV3Checkpoint.Load(directory, device, options, out report);
        var dense = (DenseConfig)config;
        // A tied checkpoint may still carry lm_head.weight (a copy of the embedding): skip it.
        return HfCheckpoint.Load(() => new DenseForCausalLM(dense, new Generator(0), device), directory, options,
            out report, name => dense.TieWordEmbeddings && name == "lm_head.weight");
    }
}
