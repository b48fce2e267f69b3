namespace NativeReasoner.RL.Chat;

/// <summary>
/// Variable scopes of one render: the globals (functions), the caller's variables, the template's top level,
/// and one scope per for-loop iteration or macro call (a <c>set</c> inside a loop does not leak out, as in jinja2).
/// </summary>
internal sealed class JinjaContext
{
    private readonly List<Dictionary<string, object?>> _frames;

    public JinjaContext(IEnumerable<Dictionary<string, object?>> frames) => _frames = [.. frames];

    /// <summary>The scopes a macro sees when it is called later.</summary>
    public IReadOnlyList<Dictionary<string, object?>> Frames => _frames;

    public object? Lookup(string name)
    {
        for (int i = _frames.Count - 1; i >= 0; i--)
            if (_frames[i].TryGetValue(name, out var v)) return v;
        return new JinjaUndefined($"'{name}'");
    }

    public void Set(string name, object? value) => _frames[^1][name] = value;

    public void Push() => _frames.Add(new Dictionary<string, object?>(StringComparer.Ordinal));

    public void Pop() => _frames.RemoveAt(_frames.Count - 1);
}
