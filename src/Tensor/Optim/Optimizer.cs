using System.Runtime.InteropServices;
using NativeReasoner.Nn;

namespace NativeReasoner.Optim;

/// <summary>
/// Base of the optimizers: parameter groups, the step counter, gradient reset and the lifetime of the
/// per-parameter state. State tensors are created outside every <see cref="TensorScope"/> (so a scope around
/// a training step never frees them) and are freed by <see cref="Dispose()"/>; the parameters themselves
/// belong to their module and are never disposed here.
/// </summary>
public abstract class Optimizer : IDisposable
{
    private readonly List<ParamGroup> _groups;
    private bool _disposed;

    protected Optimizer(IEnumerable<ParamGroup> groups, float learningRate, float weightDecay)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentOutOfRangeException.ThrowIfNegative(learningRate);
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        _groups = groups.ToList();
        if (_groups.Count == 0) throw new ArgumentException("an optimizer needs at least one parameter group", nameof(groups));
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var g in _groups)
        {
            g.ApplyDefaults(learningRate, weightDecay);
            foreach (var p in g.Parameters)
            {
                ArgumentNullException.ThrowIfNull(p, nameof(groups));
                // Stepping one parameter twice per Step() would silently double its update.
                if (!seen.Add(p)) throw new ArgumentException($"parameter{(p.Name == null ? "" : $" '{p.Name}'")} appears more than once in the optimizer's groups", nameof(groups));
            }
        }
    }

    /// <summary>One group holding all of <paramref name="parameters"/>.</summary>
    protected static IEnumerable<ParamGroup> SingleGroup(IEnumerable<Parameter> parameters) =>
        [new ParamGroup(parameters ?? throw new ArgumentNullException(nameof(parameters)))];

    public IReadOnlyList<ParamGroup> ParamGroups => _groups;

    /// <summary>
    /// The first group's learning rate. Setting it sets every group's (what an LR schedule does each step);
    /// to keep different rates per group, set <see cref="ParamGroup.LearningRate"/> on each group instead.
    /// </summary>
    public float LearningRate
    {
        get => _groups[0].LearningRate;
        set
        {
            foreach (var g in _groups) g.LearningRate = value;
        }
    }

    /// <summary>Number of completed <see cref="Step"/> calls.</summary>
    public long StepCount { get; protected set; }

    /// <summary>A parameter to update this step and its dense gradient (contiguous float32, same shape and device).</summary>
    protected readonly record struct ParamUpdate(Parameter Parameter, Tensor Grad);

    // Reused by every Step (a training loop steps thousands of times; nothing here should allocate once warm).
    private readonly List<ParamUpdate> _pending = new();
    private readonly List<Tensor> _copies = new();

    /// <summary>
    /// Updates every parameter that has a gradient, then increments <see cref="StepCount"/>. Parameters
    /// whose <see cref="Tensor.Grad"/> is null are skipped (their state is left as it is). Each group's
    /// parameters are checked first and then handed to <see cref="UpdateGroup"/> together, so an optimizer can
    /// update many tensors in one launch.
    /// </summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (var g in _groups)
        {
            _pending.Clear();
            try
            {
                foreach (var p in g.Parameters)
                {
                    var grad = p.Grad;
                    if (grad == null || p.Numel == 0) continue;
                    if (p.IsDisposed) throw new ObjectDisposedException(nameof(Parameter), $"parameter{(p.Name == null ? "" : $" '{p.Name}'")} was disposed");
                    if (grad.DType != Kernels.DType.Float32)
                        throw new InvalidOperationException($"gradient of parameter '{p.Name}' is {grad.DType}, float32 expected");
                    if (!grad.Device.Equals(p.Device))
                        throw new InvalidOperationException($"gradient of parameter '{p.Name}' is on {grad.Device}, the parameter on {p.Device}");
                    // Kernels read the gradient densely; a strided one (set by hand) is copied first.
                    if (!grad.IsContiguous)
                        using (TensorScope.Suspend())
                        {
                            grad = grad.Contiguous();
                            _copies.Add(grad);
                        }
                    _pending.Add(new ParamUpdate(p, grad));
                }
                // State created by the update must not belong to whatever scope surrounds Step().
                if (_pending.Count > 0)
                    using (TensorScope.Suspend())
                        UpdateGroup(g, CollectionsMarshal.AsSpan(_pending));
            }
            finally
            {
                foreach (var c in _copies) c.Dispose();
                _copies.Clear();
                _pending.Clear();
            }
        }
        StepCount++;
    }

    /// <summary>
    /// Updates the parameters of one group that have a gradient this step, in group order. The default applies
    /// <see cref="Update"/> to each; an optimizer that can batch tensors overrides it. Runs with scopes suspended.
    /// </summary>
    protected virtual void UpdateGroup(ParamGroup group, ReadOnlySpan<ParamUpdate> items)
    {
        foreach (var u in items) Update(group, u.Parameter, u.Grad);
    }

    /// <summary>
    /// Applies one update to <paramref name="p"/> (contiguous float32) from <paramref name="grad"/>
    /// (contiguous, same shape and device). Runs with scopes suspended, so state created here is not
    /// scope-owned; the derived class keeps it and frees it in <see cref="DisposeState"/>.
    /// </summary>
    protected abstract void Update(ParamGroup group, Parameter p, Tensor grad);

    /// <summary>Frees all per-parameter state.</summary>
    protected abstract void DisposeState();

    /// <summary>
    /// Clears the gradients of every parameter in the optimizer: drops them (torch's default
    /// set_to_none=True), or fills them with zeros when <paramref name="setToNone"/> is false.
    /// </summary>
    public void ZeroGrad(bool setToNone = true)
    {
        foreach (var g in _groups)
            foreach (var p in g.Parameters)
            {
                if (setToNone) p.Grad = null;
                else
                    using (Tensor.NoGrad())
                        p.Grad?.Fill_(0f);
            }
    }

    /// <summary>Frees the optimizer state (not the parameters). Idempotent.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (_disposed) return;
        _disposed = true;
        if (disposing) DisposeState();
    }

    /// <summary>Contiguous float32 zeros shaped like p, owned by the caller (not by any scope).</summary>
    protected static Tensor NewState(Parameter p)
    {
        using (TensorScope.Suspend())
            return Tensor.Zeros(p.Shape, Kernels.DType.Float32, p.Device);
    }
}
