namespace NativeReasoner.Kernels.Cuda;

// PENDING: the kernels of this family are being written; every method below throws until then.
public sealed unsafe partial class CudaKernels
{
    public void Softmax(float* x, float* y, int rows, int cols, bool log) => throw Pending(nameof(Softmax));

    public void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log) => throw Pending(nameof(SoftmaxBackward));

    public void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps) => throw Pending(nameof(RmsNorm));

    public void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols) => throw Pending(nameof(RmsNormBackward));

    public void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse) => throw Pending(nameof(Rope));

    public void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex) => throw Pending(nameof(CrossEntropy));

    public void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits, int rows, int V, long ignoreIndex) => throw Pending(nameof(CrossEntropyBackward));

    public void SiluMul(float* gate, float* up, float* y, long n) => throw Pending(nameof(SiluMul));

    public void SiluMulBackward(float* gate, float* up, float* dy, float* dgate, float* dup, long n) => throw Pending(nameof(SiluMulBackward));

    public void LogSoftmaxGather(float* logits, long* ids, float* logp, float* lse, int rows, int V, float invTemperature) => throw Pending(nameof(LogSoftmaxGather));

    public void LogSoftmaxGatherBackward(float* logits, long* ids, float* lse, float* dlogp, float* dlogits, int rows, int V, float invTemperature) => throw Pending(nameof(LogSoftmaxGatherBackward));

    // ---------------------------------------------------------------- GRPO (CUDA-specific, issue #7 item 4)
    // The fused per-token GRPO loss and its gradient straight from the logits; the owner of this file defines
    // the exact signature and semantics to match src/RL's GRPO loss.
}
