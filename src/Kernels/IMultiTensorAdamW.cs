namespace NativeReasoner.Kernels;

/// <summary>
/// A backend that applies one AdamW step to many tensors in a single launch (PyTorch's fused/foreach AdamW;
/// CudaKernels: nr_optim_adamw_multi in kernels/cuda/optim.cu). On a GPU a model has hundreds of parameter
/// tensors, many of them tiny (norm weights, biases), so one launch each is launch-latency bound; one launch for
/// all of them is bandwidth bound. On the CPU (CpuKernels) the reason is threading: a tensor below the size worth
/// splitting runs on one core, and a MoE model's thousands of small expert matrices would all do so; one job over
/// their concatenated elements keeps every core busy. The optimizer asks for the capability
/// (<c>kernels is IMultiTensorAdamW</c>) rather than naming a backend.
/// </summary>
public unsafe interface IMultiTensorAdamW
{
    /// <summary>
    /// <see cref="IKernels.AdamWStep"/> on each of <paramref name="count"/> tensors with the same hyper-parameters and
    /// bias corrections (so the same step count): tensor i has device pointers p[i], g[i], m[i], v[i] and n[i]
    /// elements; the pointer and size arrays are host memory, read before the call returns. Element for element
    /// the same arithmetic as <see cref="IKernels.AdamWStep"/>.
    /// </summary>
    void AdamWStepMulti(int count, float** p, float** g, float** m, float** v, long* n, float lr, float beta1,
        float beta2, float eps, float weightDecay, float bias1, float bias2);
}
