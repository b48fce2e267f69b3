namespace NativeReasoner.Kernels.Cuda;

// PENDING: the kernels of this family are being written; every method below throws until then.
public sealed unsafe partial class CudaKernels
{
    public void StridedCopy(byte* src, ReadOnlySpan<long> srcStrides, byte* dst, ReadOnlySpan<long> dstStrides, ReadOnlySpan<int> shape, int elementSize) => throw Pending(nameof(StridedCopy));

    public void FloatToBFloat16(float* x, ushort* y, long n) => throw Pending(nameof(FloatToBFloat16));

    public void BFloat16ToFloat(ushort* x, float* y, long n) => throw Pending(nameof(BFloat16ToFloat));

    public void FloatToHalf(float* x, ushort* y, long n) => throw Pending(nameof(FloatToHalf));

    public void HalfToFloat(ushort* x, float* y, long n) => throw Pending(nameof(HalfToFloat));

    public void Int64ToFloat(long* x, float* y, long n) => throw Pending(nameof(Int64ToFloat));

    public void FloatToInt64(float* x, long* y, long n) => throw Pending(nameof(FloatToInt64));

    public void Int32ToInt64(int* x, long* y, long n) => throw Pending(nameof(Int32ToInt64));

    public void Int64ToInt32(long* x, int* y, long n) => throw Pending(nameof(Int64ToInt32));

    public void Unary(UnaryOp op, float* x, float* y, long n, float alpha) => throw Pending(nameof(Unary));

    public void UnaryBackward(UnaryOp op, float* x, float* y, float* dy, float* dx, long n, float alpha) => throw Pending(nameof(UnaryBackward));

    public void Binary(BinaryOp op, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides, float* c, ReadOnlySpan<int> shape) => throw Pending(nameof(Binary));

    public void Where(float* cond, ReadOnlySpan<long> condStrides, float* a, ReadOnlySpan<long> aStrides, float* b, ReadOnlySpan<long> bStrides, float* output, ReadOnlySpan<int> shape) => throw Pending(nameof(Where));

    public void AccumulateStrided(float* src, ReadOnlySpan<int> shape, float* dst, ReadOnlySpan<long> dstStrides) => throw Pending(nameof(AccumulateStrided));

    public double SumOfSquares(float* x, long n) => throw Pending(nameof(SumOfSquares));

    public void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex) => throw Pending(nameof(Reduce));

    public void AdamWStep(float* p, float* g, float* m, float* v, long n, float lr, float beta1, float beta2, float eps, float weightDecay, float bias1, float bias2) => throw Pending(nameof(AdamWStep));

    public void SgdStep(float* p, float* g, float* momentumBuffer, long n, float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep) => throw Pending(nameof(SgdStep));
}
