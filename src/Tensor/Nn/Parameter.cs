using NativeReasoner.Kernels;

namespace NativeReasoner.Nn;

/// <summary>
/// A trainable float32 leaf tensor (torch.nn.Parameter). A parameter belongs to no <see cref="TensorScope"/>:
/// it outlives the scopes of the training steps that read it, and is freed by <see cref="Tensor.Dispose"/>
/// (normally through <see cref="Module.Dispose()"/>). Its accumulated <see cref="Tensor.Grad"/> is created
/// outside scopes by the backward engine, so it survives a scoped step too, until the optimizer's
/// ZeroGrad.
/// </summary>
public sealed class Parameter : Tensor
{
    /// <summary>
    /// A parameter holding a <b>copy</b> of <paramref name="data"/> (converted to float32 when it is
    /// bfloat16 or float16), always contiguous. The caller keeps ownership of <paramref name="data"/>:
    /// copying rather than sharing means disposing either one never invalidates the other, and the graph
    /// <paramref name="data"/> may belong to is not carried over.
    /// </summary>
    public Parameter(Tensor data, bool requiresGrad = true)
        : this(new OwnedStorage(CopyAsFloat32(data)), requiresGrad)
    {
    }

    private Parameter(OwnedStorage storage, bool requiresGrad)
        : base(storage.Tensor.Buffer.RetainSelf(), storage.Tensor.Device, DType.Float32,
            storage.Tensor.Shape.ToArray(), ContiguousStrides(storage.Tensor.Shape), storage.Tensor.Offset)
    {
        // The temporary handed its memory over (we hold our own reference now).
        storage.Tensor.Dispose();
        // The base constructor registered this object with the current scope; a parameter must not be
        // freed when that scope closes.
        DetachFromScopes();
        if (requiresGrad) RequiresGrad_();
    }

    /// <summary>
    /// Wraps a freshly created, contiguous float32 tensor that nobody else references, without copying
    /// (layers use this for their initial values). <paramref name="fresh"/> is consumed: it is disposed and
    /// must not be used afterwards.
    /// </summary>
    public static Parameter FromOwned(Tensor fresh, bool requiresGrad = true)
    {
        if (fresh.DType != DType.Float32 || !fresh.IsContiguous)
            throw new ArgumentException($"Parameter.FromOwned needs a contiguous float32 tensor, got {fresh.DType} of shape {FormatShape(fresh.Shape)}");
        return new Parameter(new OwnedStorage(fresh), requiresGrad);
    }

    private static Tensor CopyAsFloat32(Tensor data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!data.DType.IsFloating())
            throw new ArgumentException($"a Parameter must be floating point, tensor{data.NameSuffix} is {data.DType}", nameof(data));
        // Suspended: the temporary copy is disposed by the constructor, never by a scope.
        using (TensorScope.Suspend())
            return data.DType == DType.Float32 ? data.ContiguousCopyNoGrad() : data.ToDTypeNoGrad(DType.Float32);
    }

    // A distinct constructor signature for "take this tensor's memory" (vs. the public copying one).
    private readonly record struct OwnedStorage(Tensor Tensor);

    /// <summary>
    /// Keeps this parameter's values in <paramref name="dtype"/> (BFloat16 or Float16 for inference weights kept as a
    /// checkpoint stores them; Float32 is a no-op), in place, and freezes it: a narrow weight has no gradient.
    /// Products with it multiply in fp32 accumulation (see <see cref="Tensor.MatMul"/>).
    /// </summary>
    public void StoreAs(DType dtype) => ReplaceStorageNoGrad(dtype);

    /// <summary>
    /// As <see cref="StoreAs"/>, but the new memory is left uninitialised: for a loader that writes every value
    /// right after, so the old values are neither converted nor read.
    /// </summary>
    public void StoreAsUninitialized(DType dtype) => ReplaceStorageNoGrad(dtype, keepValues: false);

    /// <summary>
    /// Re-stores this weight matrix [N, K] packed in <paramref name="format"/> (quantised from its values, the old
    /// memory released) and freezes it: inference only, read by <see cref="Tensor.Linear"/>.
    /// </summary>
    public void StoreAsPacked(NativeReasoner.Kernels.Quant.QuantFormat format) =>
        ReplaceStoragePacked(format, keepValues: true);

    /// <summary>As <see cref="StoreAsPacked"/>, the packed bytes left uninitialised for a loader to fill.</summary>
    public void StoreAsPackedUninitialized(NativeReasoner.Kernels.Quant.QuantFormat format) =>
        ReplaceStoragePacked(format, keepValues: false);

    public override string ToString() => "Parameter" + base.ToString()["Tensor".Length..];
}
