// Source: torch.index_select / index_add / gather / scatter_add.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void IndexSelect(float* x, long* idx, float* y, int outer, int dimIn, int n, int inner)
    {
        // x: [outer, dimIn, inner]; idx: [n]; y: [outer, n, inner]
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < inner; i++)
                    y[((long)o * n + j) * inner + i] = x[((long)o * dimIn + idx[j]) * inner + i];
    }

    public void IndexAdd(float* src, long* idx, float* dst, int outer, int n, int dimDst, int inner)
    {
        // src: [outer, n, inner]; idx: [n]; dst: [outer, dimDst, inner]
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < inner; i++)
                    dst[((long)o * dimDst + idx[j]) * inner + i] += src[((long)o * n + j) * inner + i];
    }

    public void Gather(float* x, long* idx, float* y, int outer, int dimIn, int dimOut, int inner)
    {
        // x: [outer, dimIn, inner]; idx, y: [outer, dimOut, inner]
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < dimOut; j++)
                for (int i = 0; i < inner; i++)
                {
                    long at = ((long)o * dimOut + j) * inner + i;
                    y[at] = x[((long)o * dimIn + idx[at]) * inner + i];
                }
    }

    public void ScatterAdd(float* src, long* idx, float* dst, int outer, int dimSrc, int dimDst, int inner)
    {
        // src, idx: [outer, dimSrc, inner]; dst: [outer, dimDst, inner]
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < dimSrc; j++)
                for (int i = 0; i < inner; i++)
                {
                    long at = ((long)o * dimSrc + j) * inner + i;
                    dst[((long)o * dimDst + idx[at]) * inner + i] += src[at];
                }
    }
}
