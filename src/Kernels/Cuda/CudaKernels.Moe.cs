namespace NativeReasoner.Kernels.Cuda;

// PENDING: the kernels of this family are being written; every method below throws until then.
public sealed unsafe partial class CudaKernels
{
    public void MoeRoute(float* scores, float* bias, int n, int experts, int groups, int topkGroups, int k, bool useBias, float* selection, int* indices, float* weights, bool normalize, float scale) => throw Pending(nameof(MoeRoute));

    public void MoePermute(int* indices, int n, int k, int experts, int* expertOffsets, int* slotOrder, int* slotPosition) => throw Pending(nameof(MoePermute));

    public void MoeDispatch(float* x, int* slotPosition, float* weights, int n, int k, int d, float* y) => throw Pending(nameof(MoeDispatch));

    public void MoeCombine(float* src, int* slotPosition, float* weights, int n, int k, int d, float* y) => throw Pending(nameof(MoeCombine));

    public void MoeCombineWeightGrad(float* dy, float* src, int* slotPosition, int n, int k, int d, float* dw) => throw Pending(nameof(MoeCombineWeightGrad));

    public void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner) => throw Pending(nameof(IndexSelect));

    public void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner) => throw Pending(nameof(IndexAdd));

    public void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner) => throw Pending(nameof(Gather));

    public void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner) => throw Pending(nameof(ScatterAdd));

    public void TopK(float* x, float* values, long* indices, int rows, int cols, int k) => throw Pending(nameof(TopK));
}
