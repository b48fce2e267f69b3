namespace NativeReasoner;

/// <summary>
/// A disposal scope for temporaries. Every tensor created while a scope is the innermost one on this
/// thread is registered with it, and disposed when the scope is disposed — unless it was disposed
/// earlier or moved out with <see cref="Tensor.MoveToOuterScope"/> / <see cref="Tensor.DetachFromScopes"/>.
/// This is how a training step frees its activations and gradients deterministically without finalizers:
/// <code>
/// using (var scope = new TensorScope()) { var loss = model.Forward(x); loss.Backward(); opt.Step(); }
/// </code>
/// Scopes nest. Tensors created with no scope open are owned by the caller, who disposes them.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? t_current;

    private readonly List<Tensor> _tensors = new();
    private readonly TensorScope? _outer;
    private readonly bool _suspended;
    private bool _disposed;

    /// <summary>The innermost scope of this thread, or null.</summary>
    public static TensorScope? Current => t_current is { _suspended: true } ? null : t_current;

    public TensorScope() : this(suspended: false) { }

    private TensorScope(bool suspended)
    {
        _suspended = suspended;
        _outer = t_current;
        t_current = this;
    }

    /// <summary>
    /// Opens a region in which new tensors belong to no scope (e.g. parameters, optimizer state and
    /// accumulated gradients created during a scoped step). Dispose it to restore the previous scope.
    /// </summary>
    public static IDisposable Suspend() => new TensorScope(suspended: true);

    /// <summary>Tensors registered and not yet disposed or moved out.</summary>
    public int Count => _tensors.Count(t => t.OwnerScope == this && !t.IsDisposed);

    internal TensorScope? Outer => _outer;

    internal bool IsSuspended => _suspended;

    internal static void RegisterNew(Tensor t)
    {
        var scope = Current;
        if (scope == null) return;
        scope._tensors.Add(t);
        t.OwnerScope = scope;
    }

    internal void Adopt(Tensor t)
    {
        _tensors.Add(t);
        t.OwnerScope = this;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (t_current != this)
            throw new InvalidOperationException("TensorScope disposed out of order: inner scopes must be disposed first");
        t_current = _outer;
        if (_suspended) return;
        foreach (var t in _tensors)
            if (t.OwnerScope == this)
            {
                t.OwnerScope = null;
                t.Dispose();
            }
        _tensors.Clear();
    }
}
