// Source: Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (TOMS 2008) and BLIS's micro-kernel
//         design; the semantics of BLAS sgemm.
using System.Buffers;
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Cuda;

/// <summary>
/// GEMM on the CUDA backend (kernels/cuda/gemm.cu: fp32 SIMT; gemm_bf16.cu: bf16 tensor cores). Every layout
/// runs the same kernels: the transposes are absorbed by how a tile is loaded, never materialised. The host
/// side picks a tile size from the shape and proves the alignment that lets the kernels use 16-byte accesses.
/// </summary>
public sealed unsafe partial class CudaKernels
{
    /// <summary>The launch parameter block: the layout of <c>nr_gemm_params</c> in kernels/cuda/gemm.cuh.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct GemmParams
    {
        public void* A, B;
        public float* C;
        public long StrideA, StrideB, StrideC;
        public int M, N, K, Lda, Ldb, Ldc;
        public float Alpha, Beta;
        public int Batch, VecA, VecB, VecC, TransA, TransB;
    }

    /// <summary>One item of a grouped launch: the layout of <c>nr_gemm_group_item</c> in kernels/cuda/gemm.cuh.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct GemmGroupItem
    {
        public void* A, B;
        public float* C;
        public int M, K, TileStart, Pad;
    }

    /// <summary>The block tile of a GEMM launch. Auto: chosen from the shape (<see cref="PickTile"/>).</summary>
    internal enum GemmTile { Auto, Large, Small }

    /// <summary>Side of the large and the small block tile (fp32 and bf16 alike).</summary>
    private const int GemmLargeTile = 128, GemmSmallTile = 64;

    /// <summary>Most items whose descriptors are built on the stack (MoE layers have up to 256 experts).</summary>
    private const int GemmGroupStackItems = 512;

    public void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha, float* A, int lda, long strideA,
        float* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC) =>
        Gemm(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, GemmTile.Auto);

    /// <summary><see cref="IKernels.Gemm"/> with the block tile forced (tests run every variant).</summary>
    internal void Gemm(int batch, bool transA, bool transB, int M, int N, int K, float alpha, float* A, int lda, long strideA,
        float* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC, GemmTile tile)
    {
        if (batch <= 0 || M <= 0 || N <= 0) return;
        var p = Params(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, sizeof(float));
        if (tile == GemmTile.Auto) tile = PickTile(M, N, batch);
        int side = tile == GemmTile.Large ? GemmLargeTile : GemmSmallTile;
        string kernel = tile == GemmTile.Large ? "nr_gemm_f32_128x128" : "nr_gemm_f32_64x64";
        void** a = stackalloc void*[1];
        a[0] = &p;
        Launch("gemm.cu", kernel, TileGrid(M, N, side), 1, BatchGrid(batch), 256, 1, 1, 0, a);
    }

    public void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha, ushort* A, int lda, long strideA,
        ushort* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC) =>
        GemmBf16(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, GemmTile.Auto);

    /// <summary><see cref="IKernels.GemmBf16"/> with the block tile forced (tests run every variant).</summary>
    internal void GemmBf16(int batch, bool transA, bool transB, int M, int N, int K, float alpha, ushort* A, int lda, long strideA,
        ushort* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC, GemmTile tile)
    {
        if (batch <= 0 || M <= 0 || N <= 0) return;
        var p = Params(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, sizeof(ushort));
        if (tile == GemmTile.Auto) tile = PickTile(M, N, batch);
        bool large = tile == GemmTile.Large;
        int layout = (transA ? 2 : 0) + (transB ? 1 : 0);
        string kernel = large ? Bf16Kernels128[layout] : Bf16Kernels64[layout];
        // Shared memory: STAGES × (BM + BN) × 32 bf16 (the ring of gemm_bf16.cu): 4 × 256 × 64 B, 3 × 128 × 64 B.
        int shared = large ? 4 * 256 * 64 : 3 * 128 * 64;
        void** a = stackalloc void*[1];
        a[0] = &p;
        Launch("gemm_bf16.cu", kernel, TileGrid(M, N, large ? GemmLargeTile : GemmSmallTile), 1, BatchGrid(batch),
            large ? 256u : 128u, 1, 1, shared, a);
    }

    /// <summary>The bf16 kernels by layout, indexed (transA ? 2 : 0) + (transB ? 1 : 0).</summary>
    private static readonly string[] Bf16Kernels128 =
        ["nr_gemm_bf16_128x128_nn", "nr_gemm_bf16_128x128_nt", "nr_gemm_bf16_128x128_tn", "nr_gemm_bf16_128x128_tt"];

    private static readonly string[] Bf16Kernels64 =
        ["nr_gemm_bf16_64x64_nn", "nr_gemm_bf16_64x64_nt", "nr_gemm_bf16_64x64_tn", "nr_gemm_bf16_64x64_tt"];

    public void GemmGrouped(int count, bool transA, bool transB, int* M, int N, int* K, float alpha, float** A, int lda,
        float** B, int ldb, float beta, float** C, int ldc) =>
        GemmGrouped(count, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, GemmTile.Auto);

    /// <summary>
    /// <see cref="IKernels.GemmGrouped"/> with the block tile forced. One launch for all items: a descriptor per
    /// item with M &gt; 0 (its pointers, M, K and the prefix sum of the tile counts before it) goes to a scratch
    /// buffer, and block b of the grid works on tile b − tileStart of the item whose range holds b.
    /// </summary>
    internal void GemmGrouped(int count, bool transA, bool transB, int* M, int N, int* K, float alpha, float** A, int lda,
        float** B, int ldb, float beta, float** C, int ldc, GemmTile tile)
    {
        if (count <= 0 || N <= 0) return;
        int active = 0;
        long rows = 0, maxRows = 0;
        for (int i = 0; i < count; i++)
            if (M[i] > 0)
            {
                active++;
                rows += M[i];
                maxRows = Math.Max(maxRows, M[i]);
            }
        if (active == 0) return;

        if (tile == GemmTile.Auto)
        {
            // Large tiles only when they are mostly filled (few padding rows) and there are enough of them.
            long largeTiles = 0, paddedRows = 0;
            for (int i = 0; i < count; i++)
                if (M[i] > 0)
                {
                    long t = (M[i] + GemmLargeTile - 1) / GemmLargeTile;
                    paddedRows += t * GemmLargeTile;
                    largeTiles += t * ((N + GemmLargeTile - 1) / GemmLargeTile);
                }
            tile = N >= GemmLargeTile && rows * 4 >= paddedRows * 3 && largeTiles >= _backend.MultiprocessorCount
                ? GemmTile.Large : GemmTile.Small;
        }
        int side = tile == GemmTile.Large ? GemmLargeTile : GemmSmallTile;
        long tilesN = (N + side - 1) / side;

        GemmGroupItem[]? rented = null;
        Span<GemmGroupItem> items = active <= GemmGroupStackItems
            ? stackalloc GemmGroupItem[active]
            : (rented = ArrayPool<GemmGroupItem>.Shared.Rent(active)).AsSpan(0, active);
        try
        {
            long tiles = 0;
            bool vecA = true, vecB = true, vecC = true;
            int n = 0;
            for (int i = 0; i < count; i++)
            {
                if (M[i] <= 0) continue;
                items[n++] = new GemmGroupItem { A = A[i], B = B[i], C = C[i], M = M[i], K = Math.Max(K[i], 0), TileStart = (int)tiles };
                tiles += (M[i] + side - 1) / side * tilesN;
                vecA &= Aligned(A[i], lda, 0, sizeof(float));
                vecB &= Aligned(B[i], ldb, 0, sizeof(float));
                vecC &= Aligned(C[i], ldc, 0, sizeof(float));
            }
            if (tiles > int.MaxValue) throw new NotSupportedException($"GemmGrouped: {tiles} tiles exceed one launch");

            var p = new GemmParams
            {
                N = N, Lda = lda, Ldb = ldb, Ldc = ldc, Alpha = alpha, Beta = beta, Batch = 1,
                VecA = vecA ? 1 : 0, VecB = vecB ? 1 : 0, VecC = vecC ? 1 : 0, TransA = transA ? 1 : 0, TransB = transB ? 1 : 0,
            };
            var table = Upload<GemmGroupItem>(items);
            try
            {
                void* tablePtr = table.Pointer;
                void** a = stackalloc void*[3];
                a[0] = &tablePtr;
                a[1] = &active;
                a[2] = &p;
                Launch("gemm.cu", tile == GemmTile.Large ? "nr_gemm_f32_grouped_128x128" : "nr_gemm_f32_grouped_64x64",
                    (uint)tiles, 1, 1, 256, 1, 1, 0, a);
            }
            finally
            {
                table.Release();
            }
        }
        finally
        {
            if (rented != null) ArrayPool<GemmGroupItem>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Large tiles (128×128) when both sides fill them and there are at least as many tiles as SMs; otherwise the
    /// small ones (64×64): four times the blocks, so skinny and small problems still spread over the device.
    /// </summary>
    private GemmTile PickTile(int M, int N, int batch)
    {
        long large = (long)((M + GemmLargeTile - 1) / GemmLargeTile) * ((N + GemmLargeTile - 1) / GemmLargeTile) * batch;
        return M >= GemmLargeTile && N >= GemmLargeTile && large >= _backend.MultiprocessorCount ? GemmTile.Large : GemmTile.Small;
    }

    private static GemmParams Params(int batch, bool transA, bool transB, int M, int N, int K, float alpha, void* A, int lda,
        long strideA, void* B, int ldb, long strideB, float beta, float* C, int ldc, long strideC, int elementSize) => new()
        {
            A = A, B = B, C = C, StrideA = strideA, StrideB = strideB, StrideC = strideC,
            M = M, N = N, K = Math.Max(K, 0), Lda = lda, Ldb = ldb, Ldc = ldc, Alpha = alpha, Beta = beta, Batch = batch,
            VecA = Aligned(A, lda, strideA, elementSize) ? 1 : 0,
            VecB = Aligned(B, ldb, strideB, elementSize) ? 1 : 0,
            // fp32 kernels store C 16 bytes at a time, the bf16 kernels 8 (a lane's column pair).
            VecC = Aligned(C, ldc, strideC, sizeof(float), elementSize == sizeof(float) ? 16 : 8) ? 1 : 0,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0,
        };

    /// <summary>Whether every row start of every batch item of an operand is <paramref name="bytes"/>-aligned.</summary>
    private static bool Aligned(void* p, int ld, long stride, int elementSize, int bytes = 16)
    {
        int elems = bytes / elementSize;
        return (ulong)p % (ulong)bytes == 0 && ld % elems == 0 && stride % elems == 0;
    }

    /// <summary>Blocks for the tiles of one M×N product.</summary>
    private static uint TileGrid(int M, int N, int side)
    {
        long tiles = (long)((M + side - 1) / side) * ((N + side - 1) / side);
        if (tiles > int.MaxValue) throw new NotSupportedException($"GEMM {M}×{N}: {tiles} tiles exceed one launch");
        return (uint)tiles;
    }

    /// <summary>gridDim.z: the batch, capped at the driver's limit (the kernels loop past it).</summary>
    private static uint BatchGrid(int batch) => (uint)Math.Min(batch, 65535);
}
