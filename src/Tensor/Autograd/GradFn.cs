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

    /// <param name="backward">
    /// Given dL/d(output), returns dL/d(input i) for each input (null where not needed). Runs with grad
    /// mode off. Returned tensors are new (or views); the engine owns and disposes them.
    /// </param>
    public GradFn(string name, Tensor?[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        Name = name;
        Inputs = inputs;
        _backward = backward;
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

    internal void Release() => _backward = null;

    public override string ToString() => $"GradFn({Name})";
}
