// Source: a name → task registry, as open-r1 maps reward names to reward functions.
namespace NativeReasoner.RL;

/// <summary>The built-in verifiable tasks by name.</summary>
public static class TaskRegistry
{
    private static readonly Dictionary<string, Func<VerifiableTask>> Factories = new(StringComparer.OrdinalIgnoreCase)
    {
        ["arithmetic"] = () => new ArithmeticTask(),
        ["ladder"] = () => new LadderTask(),
        ["linear"] = () => new LinearEquationTask(),
        ["countdown"] = () => new CountdownTask(),
        ["word"] = () => new WordProblemTask(),
    };

    public static IReadOnlyList<string> Names { get; } = Factories.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>The task called <paramref name="name"/>; an unknown name throws an error listing the known ones.</summary>
    public static VerifiableTask Create(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Factories.TryGetValue(name.Trim(), out var f)) return f();
        throw new ArgumentException($"unknown task '{name}'; known tasks: {string.Join(", ", Names)}", nameof(name));
    }
}
