namespace NativeReasoner.Model;

/// <summary>
/// The DeepSeek-V3 architecture (MLA, DeepSeekMoE, YaRN RoPE) and Hugging Face checkpoints live here;
/// this assembly is an empty shell until the model issue fills it.
/// </summary>
public static class ModelAssembly
{
    public static string Name => typeof(ModelAssembly).Assembly.GetName().Name!;
}
