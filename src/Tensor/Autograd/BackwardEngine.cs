namespace NativeReasoner.Autograd;

/// <summary>Runs reverse-mode differentiation over the graph recorded by the ops.</summary>
internal static class BackwardEngine
{
    public static void Run(Tensor root, Tensor? gradient, bool retainGraph)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("backward on a tensor that does not require grad (no input requires grad, or it was built under NoGrad)");
        if (gradient == null && root.Numel != 1)
            throw new InvalidOperationException($"backward needs a gradient for a non-scalar output of shape {Tensor.FormatShape(root.Shape)}");

        var order = TopologicalOrder(root);
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        var temporaries = new List<Tensor>();
        var processed = new List<GradFn>();
        using (GradMode.Disable())
        {
            Tensor seed = gradient != null
                ? gradient.Expect(root.Shape, "backward gradient")
                : Tensor.Full(root.Shape, 1f, root.Device);
            if (gradient == null) temporaries.Add(seed);
            grads[root] = seed;

            // Reverse topological order: every consumer of a tensor is processed before the tensor.
            for (int i = order.Count - 1; i >= 0; i--)
            {
                var t = order[i];
                if (!grads.TryGetValue(t, out var g)) continue;
                if (t.IsLeaf)
                {
                    AccumulateIntoLeaf(t, g, gradient);
                    continue;
                }
                var fn = t.GradFn!;
                var inputGrads = fn.Apply(g);
                for (int k = 0; k < inputGrads.Length; k++)
                {
                    var input = fn.Inputs[k];
                    var ig = inputGrads[k];
                    if (ig == null) continue;
                    // The engine disposes every returned gradient; never let that reach g or the caller's tensor.
                    if (ReferenceEquals(ig, g) || ReferenceEquals(ig, gradient)) ig = ig.Alias();
                    temporaries.Add(ig);
                    if (input == null || !input.RequiresGrad) continue;
                    if (!ig.Shape.SequenceEqual(input.Shape))
                        throw new InvalidOperationException(
                            $"'{fn.Name}' backward produced a gradient of shape {Tensor.FormatShape(ig.Shape)} for input {k} of shape {Tensor.FormatShape(input.Shape)}");
                    if (grads.TryGetValue(input, out var existing))
                    {
                        var sum = existing.Add(ig);
                        temporaries.Add(sum);
                        grads[input] = sum;
                    }
                    else grads[input] = ig;
                }
                processed.Add(fn);
            }
        }
        foreach (var t in temporaries) t.Dispose();
        // Released only now: releasing frees held tensors that were disposed, and a node later in the
        // order may still read them.
        if (!retainGraph)
            foreach (var fn in processed) fn.Release();
    }

    private static void AccumulateIntoLeaf(Tensor leaf, Tensor g, Tensor? callerGradient)
    {
        if (!leaf.RequiresGrad) return;
        using (TensorScope.Suspend())
        {
            if (leaf.Grad == null)
            {
                // The leaf needs memory of its own, independent of the temporaries freed below. When g is a
                // temporary nothing else can reach — its memory held by g alone, no graph node holding g for a
                // later pass, not the caller's tensor — the leaf takes g's memory (an alias that outlives g's
                // disposal) instead of a copy: a weight's gradient is as large as the weight, and copying every
                // one of them each step was a measurable share of a training step.
                leaf.Grad = CanAdopt(g, callerGradient) ? g.Alias() : g.ContiguousCopyNoGrad();
            }
            else leaf.Grad.AddInPlace_(g);
        }
    }

    private static bool CanAdopt(Tensor g, Tensor? callerGradient) =>
        g.IsContiguous && g.Offset == 0 && !g.HasGraphHolds && g.Buffer.RefCount == 1
        && (callerGradient == null || (!ReferenceEquals(g, callerGradient) && !callerGradient.IsDisposed && !ReferenceEquals(g.Buffer, callerGradient.Buffer)));

    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, bool expanded)>();
        stack.Push((root, false));
        while (stack.Count > 0)
        {
            var (t, expanded) = stack.Pop();
            if (expanded)
            {
                order.Add(t);
                continue;
            }
            if (!visited.Add(t)) continue;
            stack.Push((t, true));
            if (t.GradFn != null)
                foreach (var input in t.GradFn.Inputs)
                    if (input != null && input.RequiresGrad && !visited.Contains(input))
                        stack.Push((input, false));
        }
        return order;
    }
}
