using NativeReasoner.Kernels;

namespace NativeReasoner.Nn;

/// <summary>
/// Base class of layers and models (torch.nn.Module): a tree of named parameters, buffers and child
/// modules. Names are dotted paths in registration order, e.g. "layers.0.attn.weight". A module owns what
/// is registered with it: <see cref="Dispose()"/> frees its parameters, buffers and children
/// deterministically (there is no finalizer).
/// </summary>
public abstract partial class Module : IDisposable
{
    // Insertion-ordered, so names come out in registration order.
    private readonly List<(string Name, Parameter Param)> _parameters = new();
    private readonly List<(string Name, Tensor Buffer)> _buffers = new();
    private readonly List<(string Name, Module Module)> _children = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>.</summary>
    public bool IsTraining { get; private set; } = true;

    public bool IsDisposed => _disposed;

    /// <summary>
    /// The module's computation on one input. Layers override it; containers such as
    /// <see cref="ModuleList{T}"/> have no single forward and throw.
    /// </summary>
    public virtual Tensor Forward(Tensor x) =>
        throw new NotSupportedException($"{GetType().Name} has no Forward(Tensor); call its children instead");

    // ------------------------------------------------------------------ registration

    /// <summary>Registers a trainable parameter under <paramref name="name"/>; the module takes ownership. Returns p.</summary>
    protected Parameter RegisterParameter(string name, Parameter p)
    {
        ArgumentNullException.ThrowIfNull(p);
        ClaimName(name);
        // The local name until the module tree is walked (NamedParameters assigns the full path).
        p.Name ??= name;
        _parameters.Add((name, p));
        return p;
    }

    /// <summary>
    /// Registers a non-trainable tensor (running statistics, rotary tables, ...) that is saved in
    /// <see cref="StateDict"/> but not returned by <see cref="Parameters"/>. The module takes ownership: the
    /// tensor is removed from every <see cref="TensorScope"/> and freed by <see cref="Dispose()"/>. Returns buffer.
    /// </summary>
    protected Tensor RegisterBuffer(string name, Tensor buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ClaimName(name);
        buffer.DetachFromScopes();
        buffer.Name ??= name;
        _buffers.Add((name, buffer));
        return buffer;
    }

    /// <summary>Registers a child module under <paramref name="name"/>; this module takes ownership. Returns m.</summary>
    protected T RegisterModule<T>(string name, T m) where T : Module
    {
        ArgumentNullException.ThrowIfNull(m);
        if (ReferenceEquals(m, this)) throw new ArgumentException("a module cannot be its own child", nameof(m));
        ClaimName(name);
        _children.Add((name, m));
        // A child follows its parent's mode from the moment it joins.
        m.Train(IsTraining);
        return m;
    }

    private void ClaimName(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("a registered name must not be empty", nameof(name));
        // Dots separate the levels of the tree; inside one name they would make paths ambiguous.
        if (name.Contains('.')) throw new ArgumentException($"registered name '{name}' must not contain '.'", nameof(name));
        if (!_names.Add(name)) throw new ArgumentException($"{GetType().Name} already has a member named '{name}'", nameof(name));
    }

    // ------------------------------------------------------------------ traversal

    /// <summary>
    /// Every parameter of this module and its descendants with its dotted name: this module's own in
    /// registration order, then each child's in registration order. A parameter shared by several modules
    /// (weight tying) is listed once, under its first name, so optimizers step it once. Also sets each
    /// parameter's <see cref="Tensor.Name"/> to that dotted name (for error messages).
    /// </summary>
    public IEnumerable<(string Name, Parameter Param)> NamedParameters()
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in EnumerateParameters(""))
        {
            if (!seen.Add(p)) continue;
            p.Name = name;
            yield return (name, p);
        }
    }

    /// <summary>The distinct parameters, in the order of <see cref="NamedParameters"/>.</summary>
    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(np => np.Param);

    /// <summary>Every registered buffer with its dotted name (same order rules as parameters).</summary>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers()
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (prefix, m) in EnumerateModules(""))
            foreach (var (name, b) in m._buffers)
                if (seen.Add(b)) yield return (prefix + name, b);
    }

    public IEnumerable<Tensor> Buffers() => NamedBuffers().Select(nb => nb.Buffer);

    /// <summary>
    /// This module (name "") and every descendant, depth first in registration order, with dotted names
    /// ("layers", "layers.0", "layers.0.attn", ...), as torch's named_modules. A shared module is listed once.
    /// </summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        var seen = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        foreach (var (name, m) in EnumerateModules(""))
            if (seen.Add(m)) yield return (name.TrimEnd('.'), m);
    }

    /// <summary>The direct children with their local names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children.AsReadOnly();

    /// <summary>Number of trainable scalars (distinct parameters).</summary>
    public long ParameterCount => Parameters().Sum(p => p.Numel);

    // Prefixes end in '.' (or are empty for the root) so names are built by plain concatenation.
    private IEnumerable<(string Prefix, Module Module)> EnumerateModules(string prefix)
    {
        yield return (prefix, this);
        foreach (var (name, child) in _children)
            foreach (var item in child.EnumerateModules(prefix + name + "."))
                yield return item;
    }

    private IEnumerable<(string Name, Parameter Param)> EnumerateParameters(string prefix)
    {
        foreach (var (name, p) in _parameters) yield return (prefix + name, p);
        foreach (var (name, child) in _children)
            foreach (var item in child.EnumerateParameters(prefix + name + "."))
                yield return item;
    }

    private IEnumerable<(string Name, Tensor Value)> EnumerateState(string prefix)
    {
        foreach (var (name, p) in _parameters) yield return (prefix + name, p);
        foreach (var (name, b) in _buffers) yield return (prefix + name, b);
        foreach (var (name, child) in _children)
            foreach (var item in child.EnumerateState(prefix + name + "."))
                yield return item;
    }

    // ------------------------------------------------------------------ state dict

    /// <summary>
    /// Every parameter and buffer by dotted name, in the order: own parameters, own buffers, then each
    /// child's entries (torch's state_dict order). The values are the live tensors themselves, not copies:
    /// do not dispose them. A tied parameter appears under each of its names.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var dict = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in EnumerateState(""))
            dict[name] = t;
        return dict;
    }

    /// <summary>
    /// Copies values from <paramref name="state"/> into this module's parameters and buffers (under
    /// NoGrad; the module keeps its own tensors, <paramref name="state"/> is not retained). Float sources of
    /// another float dtype (bfloat16, float16) are converted. Everything is checked before anything is
    /// copied, so a failed load leaves the module unchanged.
    /// </summary>
    /// <param name="strict">
    /// When true (the default), a key of the module missing from <paramref name="state"/>, or a key of
    /// <paramref name="state"/> the module does not have, is an error. When false they are skipped and
    /// reported in the result. A shape or dtype mismatch is always an error.
    /// </param>
    /// <exception cref="KeyNotFoundException">strict and a key is missing.</exception>
    /// <exception cref="ArgumentException">strict and a key is unexpected, or a shape/dtype mismatch (the
    /// message names the tensor and both shapes).</exception>
    public LoadStateDictResult LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        return LoadState(
            state.Keys,
            name => state[name] is { } t ? (t.Shape.ToArray(), t.DType) : throw new ArgumentException($"LoadStateDict: '{name}' is null", nameof(state)),
            name => (state[name], false),
            strict, "LoadStateDict", "the state dict");
    }

    /// <summary>
    /// The checks and copies behind every load, for any source of named tensors: <paramref name="describe"/>
    /// gives a key's shape and dtype without reading data (so a mismatch fails before anything is copied),
    /// <paramref name="read"/> gives its value and whether that tensor is a temporary to dispose after the copy.
    /// </summary>
    private LoadStateDictResult LoadState(IEnumerable<string> sourceKeys, Func<string, (int[] Shape, DType DType)> describe,
        Func<string, (Tensor Value, bool Temporary)> read, bool strict, string op, string sourceName)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var own = StateDict();
        var keys = new HashSet<string>(sourceKeys, StringComparer.Ordinal);
        var missing = own.Keys.Where(k => !keys.Contains(k)).ToList();
        var unexpected = keys.Where(k => !own.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (strict && missing.Count > 0)
            throw new KeyNotFoundException(
                $"{op}: missing key(s) in {sourceName}: {string.Join(", ", missing.Select(k => $"'{k}'"))}");
        if (strict && unexpected.Count > 0)
            throw new ArgumentException(
                $"{op}: unexpected key(s) in {sourceName}: {string.Join(", ", unexpected.Select(k => $"'{k}'"))}");

        var toLoad = new List<(string Name, Tensor Target)>();
        foreach (var (name, target) in own)
        {
            if (!keys.Contains(name)) continue;
            var (shape, dtype) = describe(name);
            if (!target.Shape.SequenceEqual(shape))
                throw new ArgumentException(
                    $"{op}: size mismatch for '{name}': {sourceName} has shape {Tensor.FormatShape(shape)}, the module has {Tensor.FormatShape(target.Shape)}");
            bool convertible = dtype == target.DType || (dtype.IsFloating() && target.DType.IsFloating());
            if (!convertible)
                throw new ArgumentException($"{op}: dtype mismatch for '{name}': {sourceName} has {dtype}, the module has {target.DType}");
            toLoad.Add((name, target));
        }

        using (Tensor.NoGrad())
            foreach (var (name, target) in toLoad)
            {
                // One tensor at a time, so a file-backed load never holds a second copy of the whole model.
                using var scope = new TensorScope();
                var (src, temporary) = read(name);
                try
                {
                    if (ReferenceEquals(target, src)) continue;
                    var value = src;
                    if (!value.Device.Equals(target.Device)) value = value.To(target.Device);
                    if (value.DType != target.DType) value = value.To(target.DType);
                    target.CopyFrom_(value);
                }
                finally
                {
                    if (temporary) src.Dispose();
                }
            }
        return new LoadStateDictResult(missing, unexpected);
    }

    // ------------------------------------------------------------------ modes and gradients

    /// <summary>Sets training mode on this module and all descendants (torch's train()). Returns this.</summary>
    public Module Train(bool on = true)
    {
        foreach (var (_, m) in NamedModules()) m.IsTraining = on;
        return this;
    }

    /// <summary>Evaluation mode on this module and all descendants: Train(false). Returns this.</summary>
    public Module Eval() => Train(false);

    /// <summary>Drops every parameter's accumulated gradient (torch's zero_grad(set_to_none=True)).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.Grad = null;
    }

    // ------------------------------------------------------------------ ownership

    /// <summary>Frees every parameter, buffer and child module. Idempotent.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (_disposed) return;
        _disposed = true;
        if (!disposing) return;
        // Tensor.Dispose is idempotent, so shared (tied) parameters and modules are safe to visit twice.
        foreach (var (_, p) in _parameters) p.Dispose();
        foreach (var (_, b) in _buffers) b.Dispose();
        foreach (var (_, c) in _children) c.Dispose();
    }
}

/// <summary>
/// What <see cref="Module.LoadStateDict"/> skipped in non-strict mode (both empty after a strict load):
/// module keys the state lacked, and state keys the module does not have.
/// </summary>
public sealed record LoadStateDictResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys);
