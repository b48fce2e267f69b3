using NativeReasoner.Kernels;
using NativeReasoner.Nn;

namespace NativeReasoner.Optim;

/// <summary>Gradient clipping utilities (torch.nn.utils.clip_grad_norm_).</summary>
public static unsafe class GradClip
{
    /// <summary>
    /// Computes the global L2 norm of all gradients, ‖g‖ = √(Σ over parameters Σ g²) (sums of squares
    /// accumulated in double), and when it exceeds <paramref name="maxNorm"/> scales every gradient in place
    /// by maxNorm / (‖g‖ + 1e-6). Parameters without a gradient are ignored.
    /// </summary>
    /// <returns>The norm before clipping (0 when no parameter has a gradient).</returns>
    /// <remarks>
    /// A non-finite norm (a NaN or infinite gradient) is returned as is and nothing is scaled: scaling by
    /// maxNorm/∞ or NaN would only wipe or poison every gradient, so the caller decides (typically: skip
    /// the step when the returned norm is not finite). torch with error_if_nonfinite=False would scale.
    /// </remarks>
    public static float ClipGradNorm(IEnumerable<Parameter> parameters, float maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (float.IsNaN(maxNorm) || maxNorm < 0f)
            throw new ArgumentOutOfRangeException(nameof(maxNorm), $"maxNorm must be ≥ 0, got {maxNorm}");
        // Materialised: the sequence is walked twice (norm, then scaling), and may be a lazy module walk.
        var grads = new List<(Parameter P, Tensor G)>();
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var p in parameters)
            if (p.Grad is { } g && seen.Add(p)) grads.Add((p, g));

        double sumSq = 0;
        foreach (var (_, g) in grads)
        {
            if (g.Numel == 0) continue;
            using (TensorScope.Suspend())
            using (var dense = g.Contiguous())
                sumSq += g.Device.Kernels.SumOfSquares(dense.Data, dense.Numel);
        }
        double norm = Math.Sqrt(sumSq);
        if (!double.IsFinite(norm) || norm <= maxNorm) return (float)norm;

        float scale = (float)(maxNorm / (norm + 1e-6));
        using (Tensor.NoGrad())
            foreach (var (p, g) in grads)
            {
                if (g.IsContiguous) g.MulInPlace_(scale);
                else
                {
                    // A strided gradient (set by hand) is replaced by a dense scaled copy.
                    using (TensorScope.Suspend())
                    {
                        // Contiguous() of a strided tensor is a fresh copy; the setter frees the old gradient.
                        p.Grad = g.Contiguous().MulInPlace_(scale);
                    }
                }
            }
        return (float)norm;
    }
}
