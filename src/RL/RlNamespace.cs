namespace NativeReasoner.RL;

/// <summary>
/// Reasoning RL (GRPO and its variants, rewards, the R1 pipelines) lives here; this assembly is an empty
/// shell until the RL issue fills it.
/// </summary>
public static class RlAssembly
{
    public static string Name => typeof(RlAssembly).Assembly.GetName().Name!;
}
