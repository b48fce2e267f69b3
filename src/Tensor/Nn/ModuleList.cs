using System.Collections;
using System.Globalization;

namespace NativeReasoner.Nn;

/// <summary>
/// An ordered list of child modules registered under "0", "1", ... (torch.nn.ModuleList), typed so that
/// <c>layers[i].Forward(x)</c> reaches the element's own API. It has no Forward of its own.
/// </summary>
public class ModuleList<T> : Module, IReadOnlyList<T> where T : Module
{
    private readonly List<T> _items = new();

    public ModuleList() { }

    public ModuleList(IEnumerable<T> modules)
    {
        foreach (var m in modules) Add(m);
    }

    /// <summary>Appends a module under the next index; the list takes ownership.</summary>
    public void Add(T module)
    {
        RegisterModule(_items.Count.ToString(CultureInfo.InvariantCulture), module);
        _items.Add(module);
    }

    public T this[int index] => _items[index];

    public int Count => _items.Count;

    public IEnumerator<T> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A <see cref="ModuleList{T}"/> of any modules.</summary>
public sealed class ModuleList : ModuleList<Module>
{
    public ModuleList() { }

    public ModuleList(IEnumerable<Module> modules) : base(modules) { }

    public ModuleList(params Module[] modules) : base(modules) { }
}
