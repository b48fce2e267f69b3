using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Fallback;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner;

// Matrix products. Transposed operands are passed to GEMM as flags, never copied: a.T() is a view
// whose last two strides are swapped, and MatMul reads that layout directly.
public unsafe partial class Tensor
{
    /// <summary>
    /// Matrix product with batch broadcasting: [..., M, K] @ [..., K, N] → [..., M, N]. A 1-D operand is
    /// not accepted (use Unsqueeze). Batch axes broadcast like NumPy. An operand may be a bfloat16 weight kept as
    /// stored (no gradient of its own): the product then runs in <c>GemmBf16</c> with the float32 operand rounded
    /// to bfloat16 and fp32 accumulation; a float16 one is widened to float32 for the call. Inside
    /// <see cref="Autocast.Bf16"/> every product, and both gradient products of its backward, runs in <c>GemmBf16</c>.
    /// </summary>
    public Tensor MatMul(Tensor other)
    {
        var a = this;
        var b = other;
        if (a.DType == DType.Packed || b.DType == DType.Packed)
            throw new InvalidOperationException(
                $"matmul: tensor{(a.DType == DType.Packed ? a : b).NameSuffix} is a packed weight; only " +
                "Tensor.Linear reads it");
        if (a.DType == DType.Float16 || b.DType == DType.Float16) return MatMulWidened(a, b);
        a.RequireGemmOperand();
        b.RequireGemmOperand();
        a.SameDevice(b, "matmul");
        if (a.Rank < 2 || b.Rank < 2)
            throw new ArgumentException($"matmul: both operands need rank ≥ 2, got {FormatShape(a.Shape)} and {FormatShape(b.Shape)}");
        int M = a._shape[^2], K = a._shape[^1], N = b._shape[^1];
        if (b._shape[^2] != K)
            throw new ArgumentException($"matmul: inner dimensions differ: {FormatShape(a.Shape)} @ {FormatShape(b.Shape)} ({K} vs {b._shape[^2]})");

        // A batch of matrices times one matrix: fold the batch into M (one large GEMM, and the weight
        // gradient becomes one GEMM too). Needs a's rows to be one strided run.
        if (b.Rank == 2 && a.Rank > 2 && a.IsContiguous)
        {
            var outShape = a._shape.ToArray();
            outShape[^1] = N;
            using var a2 = a.Reshape(-1, K);
            using var c2 = a2.MatMul(b);
            return c2.Reshape(outShape);
        }

        var batchA = a._shape.AsSpan(0, a.Rank - 2);
        var batchB = b._shape.AsSpan(0, b.Rank - 2);
        var batch = BroadcastShapes(batchA, batchB, "matmul (batch axes)");
        int batchCount = 1;
        foreach (var d in batch) batchCount = checked(batchCount * d);

        var cShape = batch.Concat(new[] { M, N }).ToArray();
        var c = Empty(cShape, DType.Float32, a.Device);
        using (var pa = a.GemmOperand(batch, "matmul"))
        using (var pb = b.GemmOperand(batch, "matmul"))
        {
            var (ta, lda, sa) = pa.Layout;
            var (tb, ldb, sb) = pb.Layout;
            bool stored = a.DType == DType.BFloat16 || b.DType == DType.BFloat16;
            if (stored || Autocast.IsBf16)
                GemmBf16Autocast(a.Device, batchCount, ta, tb, M, N, K, pa.Tensor, lda, sa, pb.Tensor, ldb, sb, c.Data);
            else
                a.Device.Kernels.Gemm(batchCount, ta, tb, M, N, K, 1f, pa.Tensor.Data, lda, sa, pb.Tensor.Data, ldb, sb,
                    0f, c.Data, N, (long)M * N);
        }
        if (!NeedsGrad(a) && !NeedsGrad(b)) return c;
        var aShape = a._shape.ToArray();
        var bShape = b._shape.ToArray();
        // The gradient products of an autocast product run in bf16 too (as PyTorch's autocast records the cast
        // operands), even when backward is called after the scope has closed.
        bool bf16 = Autocast.IsBf16;
        return Record(c, "matmul", [a, b], g =>
        {
            using var autocast = bf16 && !Autocast.IsBf16 ? Autocast.Bf16() : null;
            Tensor? ga = null, gb = null;
            if (a.RequiresGrad)
            {
                // dA = dC · Bᵀ
                using var bt = b.Transpose(-1, -2);
                using var full = g.MatMul(bt);
                ga = full.SumToShape(aShape);
            }
            if (b.RequiresGrad)
            {
                // dB = Aᵀ · dC
                using var at = a.Transpose(-1, -2);
                using var full = at.MatMul(g);
                gb = full.SumToShape(bShape);
            }
            return [ga, gb];
        });
    }

    /// <summary>
    /// The product of <see cref="MatMul"/> under <see cref="Autocast.Bf16"/>, or with a bfloat16 operand: each float32
    /// operand's memory footprint (its layout may be strided or transposed; gaps are converted too, harmlessly) is
    /// rounded to bf16 in a scratch buffer, a bfloat16 operand is read in place; then both are multiplied with fp32
    /// accumulation in the same layout.
    /// </summary>
    private static void GemmBf16Autocast(Device device, int batch, bool ta, bool tb, int M, int N, int K,
        Tensor a, int lda, long sa, Tensor b, int ldb, long sb, float* C)
    {
        long Footprint(bool trans, int rows, int cols, int ld, long stride)
        {
            long one = trans ? (long)(cols - 1) * ld + rows : (long)(rows - 1) * ld + cols;
            return (stride == 0 ? 0 : (batch - 1) * stride) + one;
        }
        long na = Footprint(ta, M, K, lda, sa), nb = Footprint(tb, K, N, ldb, sb);
        var k = device.Kernels;
        NativeBuffer? bufA = null, bufB = null;
        try
        {
            ushort* pa = AsBf16(a, na, ref bufA), pb = AsBf16(b, nb, ref bufB);
            k.GemmBf16(batch, ta, tb, M, N, K, 1f, pa, lda, sa, pb, ldb, sb, 0f, C, N, (long)M * N);
        }
        finally
        {
            bufA?.Release();
            bufB?.Release();
        }

        ushort* AsBf16(Tensor t, long n, ref NativeBuffer? scratch)
        {
            if (t.DType == DType.BFloat16) return (ushort*)t.RawPointer;
            scratch = device.Allocate(n * sizeof(ushort));
            k.FloatToBFloat16(t.Data, (ushort*)scratch.Pointer, n);
            return (ushort*)scratch.Pointer;
        }
    }

    /// <summary>float32, or a bfloat16 weight without gradient (see <see cref="MatMul"/>).</summary>
    private void RequireGemmOperand()
    {
        if (DType == DType.BFloat16 && !RequiresGrad) return;
        RequireFloat("matmul");
    }

    /// <summary>
    /// <see cref="MatMul"/> with a float16 operand (a weight kept as stored): widened to float32 for this call only.
    /// Inference only: a gradient through it would need the widened copy kept alive.
    /// </summary>
    private static Tensor MatMulWidened(Tensor a, Tensor b)
    {
        if (NeedsGrad(a) || NeedsGrad(b))
            throw new InvalidOperationException(
                $"matmul: a float16 weight ({FormatShape(a.Shape)} @ {FormatShape(b.Shape)}) is stored for inference; "
                + "load the checkpoint with float32 master weights to train through it");
        using var a32 = Widen(a);
        using var b32 = Widen(b);
        return a32.MatMul(b32);

        // Keeps a transposed operand transposed (a weight's .T()), so GEMM sees the same layout as for the float32
        // weight and the result is bit-identical to it.
        static Tensor Widen(Tensor t)
        {
            if (t.DType != DType.Float16) return t.Alias();
            if (t.Rank < 2 || t._strides[^2] != 1 || t._shape[^2] == 1) return t.ToDTypeNoGrad(DType.Float32);
            using var back = t.Transpose(-1, -2);
            using var wide = back.ToDTypeNoGrad(DType.Float32);
            return wide.Transpose(-1, -2);
        }
    }

    /// <summary>x @ weightᵀ + bias, with weight [out, in] as in PyTorch's Linear.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"linear: weight must be [out, in], got {FormatShape(weight.Shape)}");
        if (x.Rank < 1 || x._shape[^1] != weight._shape[1])
            throw new ArgumentException($"linear: input {FormatShape(x.Shape)} does not end in the weight's in_features {weight._shape[1]} (weight {FormatShape(weight.Shape)})");
        if (weight.PackedFormat is { } format) return LinearPacked(x, weight, format, bias);
        if (ReadsBf16Rows(x, weight))
        {
            // The bf16 rule of MatMul: the activations rounded to bf16 (kept in float32), fp32 accumulation.
            using var half = x.ToDTypeNoGrad(DType.BFloat16);
            using var rounded = half.ToDTypeNoGrad(DType.Float32);
            return LinearPacked(rounded, weight, QuantFormat.BF16, bias);
        }
        Tensor y;
        using (var wt = weight.T())
        {
            if (x.Rank == 1)
            {
                using var x2 = x.Unsqueeze(0);
                using var y2 = x2.MatMul(wt);
                y = y2.Squeeze(0);
            }
            else y = x.MatMul(wt);
        }
        if (bias == null) return y;
        if (bias.Rank != 1 || bias._shape[0] != weight._shape[0])
        {
            y.Dispose();
            throw new ArgumentException($"linear: bias must be [{weight._shape[0]}], got {FormatShape(bias.Shape)}");
        }
        using (y) return y.Add(bias);
    }

    /// <summary>
    /// True when an inference product with a stored bfloat16 weight and fewer than 16 rows of x (decode) takes the
    /// packed-bf16 kernel of <see cref="LinearPacked"/> (a packed bf16 weight is laid out exactly as a contiguous bf16
    /// [N, K] matrix) instead of <c>GemmBf16</c>, which widens the whole weight into scratch on every call: 6–8× slower at batch-1 decode,
    /// and a tied head of a quantised model is such a weight (136 M of Qwen2.5-0.5B's 494 M). The caller rounds the
    /// activations to bf16 first, so the numbers are those of the bf16 rule of <see cref="MatMul"/> up to the order
    /// of the fp32 sums. Not taken under <see cref="Autocast.Bf16"/> (where a bf16 weight and a float32 weight of the
    /// same values give the same bits through <c>GemmBf16</c>), when a gradient is recorded, or on a backend without
    /// its own packed kernel (the host fallback would copy the weight on every call).
    /// </summary>
    private static bool ReadsBf16Rows(Tensor x, Tensor weight) =>
        weight.DType == DType.BFloat16 && !weight.RequiresGrad && weight.IsContiguous && x.DType == DType.Float32
        && !NeedsGrad(x) && !Autocast.IsBf16 && x.Device.Equals(weight.Device)
        && x.Numel / Math.Max(1, weight._shape[1]) < Bf16RowsBelow
        && KernelFallback.Supports(x.Device.Kernels, OptionalOp.QuantizedMatMul);

    /// <summary>
    /// Rows of x from which a bf16 weight stays on <c>GemmBf16</c>: the CPU's packed kernel turns to dequantised panels
    /// into the SGEMM at 16 rows (CpuKernels.PanelFromRows), the same work as GemmBf16's widened slabs, so prefill
    /// keeps the path it had (batch-16 decode of Qwen2.5-0.5B measured the same either way, within the load's noise).
    /// </summary>
    private const int Bf16RowsBelow = 16;

    private readonly record struct GemmLayout(bool Transposed, int Ld, long BatchStride);

    private sealed class GemmOperandView(Tensor tensor, GemmLayout layout) : IDisposable
    {
        public Tensor Tensor { get; } = tensor;
        public (bool, int, long) Layout => (layout.Transposed, layout.Ld, layout.BatchStride);
        public void Dispose() => Tensor.Dispose();
    }

    /// <summary>
    /// Describes this operand to GEMM for a given broadcast batch shape: row-major or transposed matrix
    /// layout, leading dimension, and one stride between batch items (0 when broadcast). Falls back to a
    /// contiguous copy only when the strides cannot be expressed that way.
    /// </summary>
    private GemmOperandView GemmOperand(int[] batch, string op)
    {
        int rows = _shape[^2], cols = _shape[^1];
        int lead = batch.Length - (Rank - 2);
        var view = BroadcastViewNoGrad(batch.Concat(new[] { rows, cols }).ToArray(), op);
        if (TryLayout(view, batch.Length, out var layout)) return new GemmOperandView(view, layout);
        // Copy the operand (not broadcast) densely, then retry: always expressible.
        using (view)
        {
            using var dense = ContiguousCopyNoGrad();
            var v2 = dense.BroadcastViewNoGrad(batch.Concat(new[] { rows, cols }).ToArray(), op);
            if (!TryLayout(v2, batch.Length, out layout))
            {
                using var full = v2;
                var copy = v2.ContiguousCopyNoGrad();
                TryLayout(copy, batch.Length, out layout);
                return new GemmOperandView(copy, layout);
            }
            return new GemmOperandView(v2, layout);
        }
        static bool TryLayout(Tensor t, int batchRank, out GemmLayout layout)
        {
            layout = default;
            int r = t._shape[^2], c = t._shape[^1];
            long sr = t._strides[^2], sc = t._strides[^1];
            bool trans;
            long ld;
            if ((sc == 1 || c == 1) && sr >= Math.Max(c, 1)) { trans = false; ld = Math.Max(sr, c); }
            else if ((sr == 1 || r == 1) && sc >= Math.Max(r, 1)) { trans = true; ld = Math.Max(sc, r); }
            else return false;
            if (r == 1 && c == 1) { trans = false; ld = 1; }
            // The batch axes must collapse to one stride (or all be broadcast).
            long batchStride = 0;
            bool first = true;
            long expectedNext = -1;
            for (int i = batchRank - 1; i >= 0; i--)
            {
                if (t._shape[i] == 1) continue;
                if (first)
                {
                    batchStride = t._strides[i];
                    expectedNext = batchStride * t._shape[i];
                    first = false;
                }
                else
                {
                    if (batchStride == 0 ? t._strides[i] != 0 : t._strides[i] != expectedNext) return false;
                    expectedNext = t._strides[i] * t._shape[i];
                }
            }
            if (ld > int.MaxValue) return false;
            layout = new GemmLayout(trans, (int)ld, batchStride);
            return true;
        }
    }
}
