using ILGPU;
using ILGPU.Runtime;

namespace NativeReasoner.Kernels.Ilgpu;

// Shared-memory tiled SGEMM. A group of W×W threads (W = 4 or 8) computes a T×T tile of C (T = 4W): each
// thread owns a 4×4 block of outputs held in registers (rows ty + W·a, cols tx + W·b, interleaved so that a
// warp's shared-memory reads hit consecutive addresses). K is walked in chunks of KC: the group stages the
// T×KC slice of op(A) and the KC×T slice of op(B) in shared memory, then every thread does 16 FMAs per k.
public sealed unsafe partial class IlgpuKernels
{
    private const int GemmKc = 16;
    private const int GemmMaxTile = 32;

    internal struct GemmArgs
    {
        public int Batch, TransA, TransB, M, N, K, Lda, Ldb, Ldc, W;
        public long StrideA, StrideB, StrideC;
        public float Alpha, Beta;
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? _gemm;

    public void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha,
        float* A, int lda, long strideA, float* B, int ldb, long strideB,
        float beta, float* C, int ldc, long strideC)
    {
        if ((long)batch * M * N == 0) return;
        // 8×8 threads (32×32 tiles) where a group may have 64 threads; the CPU accelerator's groups are small
        // (and its barriers costly), so 4×4 threads and 16×16 tiles there.
        int w = _acc.MaxNumThreadsPerGroup >= 64 && _acc.AcceleratorType != AcceleratorType.CPU ? 8 : 4;
        int tile = 4 * w;
        long tiles = (long)batch * ((M + tile - 1) / tile) * ((N + tile - 1) / tile);
        var args = new GemmArgs
        {
            Batch = batch, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, M = M, N = N, K = K,
            Lda = lda, Ldb = ldb, Ldc = ldc, W = w, StrideA = strideA, StrideB = strideB, StrideC = strideC,
            Alpha = alpha, Beta = beta,
        };
        lock (_backend.Sync)
        {
            // K = 0 still scales C by beta; the views of A and B are then never read (pass C's).
            var a = K == 0 ? F(C) : F(A);
            var b = K == 0 ? F(C) : F(B);
            var cfg = new KernelConfig((int)Math.Min(tiles, _maxRowGroups), w * w);
            (_gemm ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernel))(cfg, a, b, F(C), args);
        }
    }

    private static void GemmKernel(ArrayView<float> A, ArrayView<float> B, ArrayView<float> C, GemmArgs g)
    {
        // As[kk·T + i] = op(A)[m0 + i, k0 + kk]; Bs[kk·T + j] = op(B)[k0 + kk, n0 + j].
        var As = SharedMemory.Allocate<float>(GemmKc * GemmMaxTile);
        var Bs = SharedMemory.Allocate<float>(GemmKc * GemmMaxTile);
        int W = g.W, T = 4 * W, G = W * W;
        int t = Group.IdxX, ty = t / W, tx = t - ty * W;
        int tilesM = (g.M + T - 1) / T, tilesN = (g.N + T - 1) / T;
        long total = (long)g.Batch * tilesM * tilesN;
        for (long tile = Grid.IdxX; tile < total; tile += Grid.DimX)
        {
            int b = (int)(tile / ((long)tilesM * tilesN));
            int rest = (int)(tile - (long)b * tilesM * tilesN);
            int m0 = rest / tilesN * T, n0 = rest % tilesN * T;
            long aBase = b * g.StrideA, bBase = b * g.StrideB, cBase = b * g.StrideC;
            float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
            float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
            for (int k0 = 0; k0 < g.K; k0 += GemmKc)
            {
                // Stage the slices; the index order follows memory order so neighbouring threads read neighbours.
                for (int e = t; e < T * GemmKc; e += G)
                {
                    int i, kk;
                    if (g.TransA == 0) { i = e / GemmKc; kk = e - i * GemmKc; }
                    else { kk = e / T; i = e - kk * T; }
                    int row = m0 + i, k = k0 + kk;
                    float v = 0f;
                    if (row < g.M && k < g.K)
                        v = g.TransA == 0 ? A[aBase + (long)row * g.Lda + k] : A[aBase + (long)k * g.Lda + row];
                    As[kk * T + i] = v;
                }
                for (int e = t; e < T * GemmKc; e += G)
                {
                    int j, kk;
                    if (g.TransB == 0) { kk = e / T; j = e - kk * T; }
                    else { j = e / GemmKc; kk = e - j * GemmKc; }
                    int col = n0 + j, k = k0 + kk;
                    float v = 0f;
                    if (col < g.N && k < g.K)
                        v = g.TransB == 0 ? B[bBase + (long)k * g.Ldb + col] : B[bBase + (long)col * g.Ldb + k];
                    Bs[kk * T + j] = v;
                }
                Group.Barrier();
                for (int kk = 0; kk < GemmKc; kk++)
                {
                    int ao = kk * T + ty, bo = kk * T + tx;
                    float a0 = As[ao], a1 = As[ao + W], a2 = As[ao + 2 * W], a3 = As[ao + 3 * W];
                    float b0 = Bs[bo], b1 = Bs[bo + W], b2 = Bs[bo + 2 * W], b3 = Bs[bo + 3 * W];
                    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                }
                // The next chunk overwrites the slices: everyone must be done reading them.
                Group.Barrier();
            }
            int r0 = m0 + ty, q0 = n0 + tx;
            Store(C, cBase, g, r0, q0, W, c00, c01, c02, c03);
            Store(C, cBase, g, r0 + W, q0, W, c10, c11, c12, c13);
            Store(C, cBase, g, r0 + 2 * W, q0, W, c20, c21, c22, c23);
            Store(C, cBase, g, r0 + 3 * W, q0, W, c30, c31, c32, c33);
        }
    }

    /// <summary>C[row, col + W·b] = alpha·acc_b + beta·C (C not read when beta = 0: it may hold NaN).</summary>
    private static void Store(ArrayView<float> C, long cBase, GemmArgs g, int row, int col, int W, float v0, float v1, float v2, float v3)
    {
        if (row >= g.M) return;
        long r = cBase + (long)row * g.Ldc;
        StoreOne(C, r, col, g, v0);
        StoreOne(C, r, col + W, g, v1);
        StoreOne(C, r, col + 2 * W, g, v2);
        StoreOne(C, r, col + 3 * W, g, v3);
    }

    private static void StoreOne(ArrayView<float> C, long rowBase, int col, GemmArgs g, float acc)
    {
        if (col >= g.N) return;
        long at = rowBase + col;
        C[at] = g.Beta == 0f ? g.Alpha * acc : g.Alpha * acc + g.Beta * C[at];
    }
}
