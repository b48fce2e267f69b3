namespace NativeReasoner.Autograd;

/// <summary>
/// One node of the reverse-mode tape: the op that produced a tensor, its inputs, and how to turn the
/// gradient of its output into gradients of its inputs. Saved tensors live in the closure; the node is
/// released after backward (unless the graph is retained) so they can be freed.
/// </summary>
public sealed class GradFn
{
    /// <summary>Op name, for error messages and debugging ("mul", "matmul", ...).</summary>
    public string Name { get; }

    /// <summary>The op's tensor inputs, in order (null where an input is not a tensor or needs no grad).</summary>
    public Tensor?[] Inputs { get; }

    private Func<Tensor, Tensor?[]>? _backward;
    private readonly List<Tensor> _held = new();

    /// <param name="backward">
    /// Given dL/d(output), returns dL/d(input i) for each input (null where not needed). Runs with grad
    /// mode off. Returned tensors are new (or views); the engine owns and disposes them.
    /// </param>
    /// <param name="saved">
    /// Extra tensors the closure reads (besides the inputs, which are held automatically). Each is held:
    /// disposing it only marks it, and it is freed when this node is released.
    /// </param>
    public GradFn(string name, Tensor?[] inputs, Func<Tensor, Tensor?[]> backward, Tensor[]? saved = null)
    {
        Name = name;
        Inputs = inputs;
        _backward = backward;
        foreach (var t in inputs)
            if (t != null) Hold(t);
        if (saved != null)
            foreach (var t in saved) Hold(t);
    }

    private void Hold(Tensor t)
    {
        t.AddGraphHold();
        _held.Add(t);
    }

    internal bool Released => _backward == null;

    internal Tensor?[] Apply(Tensor gradOutput)
    {
        var fn = _backward ?? throw new InvalidOperationException(
            $"backward through '{Name}' a second time: the graph was freed by the first backward (pass retainGraph: true)");
        var grads = fn(gradOutput);
        if (grads.Length != Inputs.Length)
            throw new InvalidOperationException($"'{Name}' backward returned {grads.Length} gradients for {Inputs.Length} inputs");
        return grads;
    }

    /// <summary>Drops the closure and the holds on inputs and saved tensors (freeing those already disposed).</summary>
    internal void Release()
    {
        if (_backward == null) return;
        _backward = null;
        foreach (var t in _held) t.ReleaseGraphHold();
        _held.Clear();
    }

    public override string ToString() => $"GradFn({Name})";
}
