namespace NativeReasoner.Kernels.Reference;

// Placeholder bodies: each is replaced by its real implementation in its own file.
public sealed unsafe partial class ReferenceKernels
{
    public void Fill(float* y, long n, float value) => throw new NotImplementedException("ReferenceKernels.Fill");
    public void StridedCopy(byte* src, ReadOnlySpan<long> srcStrides, byte* dst, ReadOnlySpan<long> dstStrides, ReadOnlySpan<int> shape, int elementSize) => throw new NotImplementedException("ReferenceKernels.StridedCopy");
    public void FloatToBFloat16(float* x, ushort* y, long n) => throw new NotImplementedException("ReferenceKernels.FloatToBFloat16");
    public void BFloat16ToFloat(ushort* x, float* y, long n) => throw new NotImplementedException("ReferenceKernels.BFloat16ToFloat");
    public void FloatToHalf(float* x, ushort* y, long n) => throw new NotImplementedException("ReferenceKernels.FloatToHalf");
    public void HalfToFloat(ushort* x, float* y, long n) => throw new NotImplementedException("ReferenceKernels.HalfToFloat");
    public void Int64ToFloat(long* x, float* y, long n) => throw new NotImplementedException("ReferenceKernels.Int64ToFloat");
    public void FloatToInt64(float* x, long* y, long n) => throw new NotImplementedException("ReferenceKernels.FloatToInt64");
    public void Int32ToInt64(int* x, long* y, long n) => throw new NotImplementedException("ReferenceKernels.Int32ToInt64");
    public void Int64ToInt32(long* x, int* y, long n) => throw new NotImplementedException("ReferenceKernels.Int64ToInt32");
    public void Unary(UnaryOp op, float* x, float* y, long n, float alpha) => throw new NotImplementedException("ReferenceKernels.Unary");
    public void UnaryBackward(UnaryOp op, float* x, float* y, float* dy, float* dx, long n, float alpha) => throw new NotImplementedException("ReferenceKernels.UnaryBackward");
    public void Binary(BinaryOp op, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides, float* c, ReadOnlySpan<int> shape) => throw new NotImplementedException("ReferenceKernels.Binary");
    public void Where(float* cond, ReadOnlySpan<long> condStrides, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides, float* output, ReadOnlySpan<int> shape) => throw new NotImplementedException("ReferenceKernels.Where");
    public void AccumulateStrided(float* src, ReadOnlySpan<int> shape, float* dst, ReadOnlySpan<long> dstStrides) => throw new NotImplementedException("ReferenceKernels.AccumulateStrided");
    public double SumOfSquares(float* x, long n) => throw new NotImplementedException("ReferenceKernels.SumOfSquares");
    public void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex) => throw new NotImplementedException("ReferenceKernels.Reduce");
    public void Softmax(float* x, float* y, int rows, int cols, bool log) => throw new NotImplementedException("ReferenceKernels.Softmax");
    public void SoftmaxBackward(float* y, float* dy, float* dx, int rows, int cols, bool log) => throw new NotImplementedException("ReferenceKernels.SoftmaxBackward");
    public void RmsNorm(float* x, float* w, float* y, float* rstd, int rows, int cols, float eps) => throw new NotImplementedException("ReferenceKernels.RmsNorm");
    public void RmsNormBackward(float* x, float* w, float* rstd, float* dy, float* dx, float* dw, int rows, int cols) => throw new NotImplementedException("ReferenceKernels.RmsNormBackward");
    public void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse) => throw new NotImplementedException("ReferenceKernels.Rope");
    public void CrossEntropy(float* logits, long* targets, float* loss, float* lse, int rows, int V, long ignoreIndex) => throw new NotImplementedException("ReferenceKernels.CrossEntropy");
    public void CrossEntropyBackward(float* logits, float* lse, long* targets, float* dloss, float* dlogits, int rows, int V, long ignoreIndex) => throw new NotImplementedException("ReferenceKernels.CrossEntropyBackward");
    public void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner) => throw new NotImplementedException("ReferenceKernels.IndexSelect");
    public void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner) => throw new NotImplementedException("ReferenceKernels.IndexAdd");
    public void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner) => throw new NotImplementedException("ReferenceKernels.Gather");
    public void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner) => throw new NotImplementedException("ReferenceKernels.ScatterAdd");
    public void TopK(float* x, float* values, long* indices, int rows, int cols, int k) => throw new NotImplementedException("ReferenceKernels.TopK");
    public void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2, float eps, float weightDecay, float bias1, float bias2) => throw new NotImplementedException("ReferenceKernels.AdamWStep");
    public void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep) => throw new NotImplementedException("ReferenceKernels.SgdStep");
}
