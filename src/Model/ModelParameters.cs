using NativeReasoner.Nn;

namespace NativeReasoner.Model;

/// <summary>Creation helpers for the model's parameters and buffers (always outside any TensorScope).</summary>
internal static class ModelParameters
{
    /// <summary>A parameter filled with one value (RMSNorm weights start at ones).</summary>
    public static Parameter Constant(int[] shape, float value, Device? device, bool requiresGrad = true)
    {
        using (TensorScope.Suspend())
        {
            using var t = Tensor.Full(shape, value, device);
            return new Parameter(t, requiresGrad);
        }
    }

    /// <summary>
    /// A parameter drawn from N(0, std²) (HF's initializer_range init for embeddings). The draw's memory becomes the
    /// parameter's (no copy): under <see cref="Tensor.SkipRandomInit"/> an embedding's float32 block then stays
    /// untouched, so a checkpoint load that replaces it never makes it resident.
    /// </summary>
    public static Parameter Normal(int[] shape, Generator gen, float std, Device? device)
    {
        using (TensorScope.Suspend())
            return Parameter.FromOwned(Tensor.Randn(shape, gen, std, device));
    }

    /// <summary>A plain tensor that belongs to no scope (buffers such as the router bias).</summary>
    public static Tensor Unscoped(int[] shape, float value, Device? device)
    {
        using (TensorScope.Suspend())
            return Tensor.Full(shape, value, device);
    }
}
