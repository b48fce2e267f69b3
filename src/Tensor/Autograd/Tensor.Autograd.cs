using NativeReasoner.Autograd;

namespace NativeReasoner;

public partial class Tensor
{
    /// <summary>Turns off graph recording until the returned scope is disposed (torch.no_grad()).</summary>
    public static IDisposable NoGrad() => GradMode.Disable();

    /// <summary>
    /// Computes gradients of this tensor with respect to every leaf that requires grad, adding them into
    /// the leaves' <see cref="Grad"/> (gradients accumulate across calls until <see cref="ZeroGrad"/>).
    /// A non-scalar output needs the upstream <paramref name="gradient"/> of its shape.
    /// </summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false) =>
        BackwardEngine.Run(this, gradient, retainGraph);

    /// <summary>A tensor sharing this one's memory, cut from the graph (no grad).</summary>
    public Tensor Detach() => new(Buffer.RetainSelf(), Device, DType, _shape.ToArray(), _strides.ToArray(), Offset);

    /// <summary>A new tensor object over the same memory and layout, without autograd history.</summary>
    internal Tensor Alias() => Detach();

    /// <summary>
    /// Attaches a graph node to <paramref name="output"/> when grad mode is on and an input requires grad.
    /// Returns output.
    /// Lifetime rule: the node holds its inputs and the <paramref name="saved"/> tensors, so an op may
    /// dispose a temporary it saved right after recording (<c>x.Dispose()</c>): it is freed when the node
    /// is released (after backward, or when the graph's tensors are disposed). A closure must not read a
    /// tensor that is neither an input, nor saved, nor the output.
    /// </summary>
    internal static Tensor Record(Tensor output, string name, Tensor?[] inputs, Func<Tensor, Tensor?[]> backward,
        params Tensor[] saved)
    {
        if (!GradMode.IsEnabled) return output;
        bool any = false;
        foreach (var t in inputs)
            if (t != null && t.RequiresGrad) { any = true; break; }
        if (!any) return output;
        output.GradFn = new GradFn(name, inputs, backward, saved);
        output.SetRequiresGradInternal(true);
        return output;
    }

    internal static bool NeedsGrad(Tensor t) => GradMode.IsEnabled && t.RequiresGrad;
}
