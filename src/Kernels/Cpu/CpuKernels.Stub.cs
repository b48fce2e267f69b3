namespace NativeReasoner.Kernels.Cpu;

// Placeholder bodies: each is replaced by its real implementation in its own file.
public sealed unsafe partial class CpuKernels
{
    public void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex) => throw new NotImplementedException("CpuKernels.Reduce");
    public void Softmax(float* x, float* y, int rows, int cols, bool log) => throw new NotImplementedException("CpuKernels.Softmax");
    public void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log) => throw new NotImplementedException("CpuKernels.SoftmaxBackward");
    public void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps) => throw new NotImplementedException("CpuKernels.RmsNorm");
    public void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols) => throw new NotImplementedException("CpuKernels.RmsNormBackward");
    public void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse) => throw new NotImplementedException("CpuKernels.Rope");
    public void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex) => throw new NotImplementedException("CpuKernels.CrossEntropy");
    public void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits, int rows, int V, long ignoreIndex) => throw new NotImplementedException("CpuKernels.CrossEntropyBackward");
    public void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner) => throw new NotImplementedException("CpuKernels.IndexSelect");
    public void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner) => throw new NotImplementedException("CpuKernels.IndexAdd");
    public void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner) => throw new NotImplementedException("CpuKernels.Gather");
    public void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner) => throw new NotImplementedException("CpuKernels.ScatterAdd");
    public void TopK(float* x, float* values, long* indices, int rows, int cols, int k) => throw new NotImplementedException("CpuKernels.TopK");
    public void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2, float eps, float weightDecay, float bias1, float bias2) => throw new NotImplementedException("CpuKernels.AdamWStep");
    public void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep) => throw new NotImplementedException("CpuKernels.SgdStep");
}
