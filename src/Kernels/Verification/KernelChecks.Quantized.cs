// Source: ggml's test-backend-ops (mul_mat with quantised src0): every backend against a reference at awkward sizes.
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cpu.Quant;
using NativeReasoner.Kernels.Fallback;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Verification;

/// <summary>
/// <see cref="IQuantizedMatMul"/> against the reference (which dequantises and multiplies in fp32). A backend may
/// quantise the activations per block of 32 to int8 as ggml does (the CPU backend does for Q8_0 / Q4_0 / Q4_K at
/// decode), which moves each output by at most Σ_blocks (max|x_block| / 127 / 2) · Σ_block |w|: every element must
/// lie within that bound (plus fp32 summation), the whole output within 2 % rms (random activations give about
/// 0.8 %; a wrong nibble order or block scale gives far more) and within 1 % of Σ|x·w| rms. bf16 weights are
/// multiplied in fp32: 1e-5.
/// </summary>
public static unsafe partial class KernelChecks
{
    static partial void AddQuantized(List<KernelCheck> list)
    {
        (int M, int N)[] shapes = [(1, 1), (1, 67), (3, 7), (15, 129), (16, 33), (37, 70)];
        foreach (QuantFormat format in Enum.GetValues<QuantFormat>())
        {
            int bs = format.BlockSize();
            int[] depths = format == QuantFormat.BF16 ? [1, 37, 100, 1030]
                : bs == 32 ? [32, 224, 1056] : [256, 768];
            foreach (var (m, n) in shapes)
                foreach (int k in depths)
                    list.Add(new KernelCheck($"quantized-matmul/{format.Name()}/{m}x{n}x{k}",
                        ctx => CheckQuantized(ctx, format, m, n, k, randomBytes: false)));
            // Every bit pattern of the levels and scales (sane fp16 scales), not only what the quantiser writes.
            list.Add(new KernelCheck($"quantized-matmul/{format.Name()}/random-blocks-5x41x{(bs == 1 ? 33 : 2 * bs)}",
                ctx => CheckQuantized(ctx, format, 5, 41, bs == 1 ? 33 : 2 * bs, randomBytes: true)));
        }
        // The CPU's integer tiles (x rows in tiles of 4 × weight rows in tiles of 4) at every ISA this CPU runs, and
        // its per-row dots beside them: short x tiles (M = 2, 3, 5, 15, 17, 33), weight rows fewer than a tile and
        // an odd count past one, an odd number of blocks (Q4_K: of superblocks). Other backends run their own path.
        foreach (var format in new[] { QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Q4_K })
            foreach (int m in new[] { 2, 3, 5, 15, 17, 33 })
                foreach (int n in new[] { 3, 37 })
                {
                    int k = format == QuantFormat.Q4_K ? 3 * 256 : 7 * 32;
                    list.Add(new KernelCheck($"quantized-matmul/tiles/{format.Name()}/{m}x{n}x{k}",
                        ctx => CheckQuantized(ctx, format, m, n, k, randomBytes: false, everyCpuPath: true)));
                }
        foreach (var format in new[] { QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Q4_K })
        {
            int k = 2 * format.BlockSize();
            list.Add(new KernelCheck($"quantized-matmul/tiles/{format.Name()}/random-blocks-6x9x{k}",
                ctx => CheckQuantized(ctx, format, 6, 9, k, randomBytes: true, everyCpuPath: true)));
        }
        // Grouped (the routed experts): empty experts, one-row experts, and one at the panel threshold's far side.
        foreach (QuantFormat format in Enum.GetValues<QuantFormat>())
        {
            int k = format == QuantFormat.BF16 ? 33 : format.BlockSize() == 32 ? 96 : 256;
            list.Add(new KernelCheck($"quantized-matmul/grouped/{format.Name()}/2x[0,1,3,0,17,2]x37x{k}",
                ctx => CheckGrouped(ctx, format, sets: 2, [0, 1, 3, 0, 17, 2], 37, k)));
            list.Add(new KernelCheck($"quantized-matmul/grouped/{format.Name()}/1x[2,0,5]x9x{k}",
                ctx => CheckGrouped(ctx, format, sets: 1, [2, 0, 5], 9, k)));
        }
        list.Add(new KernelCheck("quantized-matmul/grouped/bad-offsets", ctx =>
        {
            var op = QuantizedOp(ctx);
            float* x = ctx.Up(ctx.Rand(64)), y = ctx.Garbage<float>(64);
            byte* w = ctx.Up(new byte[64]);
            int* offsets = stackalloc int[] { 0, 2, 1 };
            byte** ws = stackalloc byte*[] { w, w };
            float** ys = stackalloc float*[] { y };
            try
            {
                op.GroupedQuantizedMatMul(QuantFormat.Q8_0, 1, 2, offsets, 1, 32, x, ws, ys);
                ctx.Require(false, "descending offsets did not throw");
            }
            catch (ArgumentException e)
            {
                ctx.Require(e.Message.Contains("ascend"), $"unclear error: {e.Message}");
            }
        }));
        list.Add(new KernelCheck("quantized-matmul/bad-arguments", ctx =>
        {
            var op = QuantizedOp(ctx);
            float* x = ctx.Up(ctx.Rand(64)), y = ctx.Garbage<float>(64);
            byte* w = ctx.Up(new byte[256]);
            try
            {
                op.QuantizedMatMul(QuantFormat.Q4_0, 1, 1, 48, x, w, y);
                ctx.Require(false, "K = 48 with Q4_0 (block 32) did not throw");
            }
            catch (ArgumentException e)
            {
                ctx.Require(e.Message.Contains("48") && e.Message.Contains("32"), $"unclear error: {e.Message}");
            }
        }));
    }

    private static IQuantizedMatMul QuantizedOp(KernelCheckContext ctx)
    {
        if (ctx.K is IQuantizedMatMul own) return own;
        ctx.UsedFallback(OptionalOp.QuantizedMatMul);
        return new HostQuantizedMatMul(ctx.K.Name, ctx.Memory, _ => { });
    }

    private static void CheckQuantized(KernelCheckContext ctx, QuantFormat format, int M, int N, int K,
        bool randomBytes, bool everyCpuPath = false)
    {
        float[] x = ctx.Rand((long)M * K);
        byte[] packed = randomBytes ? RandomBlocks(ctx.Rng, format, N, K)
            : format == QuantFormat.Q6_K ? RandomBlocks(ctx.Rng, format, N, K)
            : BlockQuantizer.Quantize(format, ctx.Rand((long)N * K, -0.1f, 0.1f), N, K);
        float[] expected = new float[(long)M * N];
        fixed (float* px = x, pe = expected)
        fixed (byte* pw = packed)
            ctx.Ref.QuantizedMatMul(format, M, N, K, px, pw, pe);

        float* dx = ctx.Up(x);
        byte* dw = ctx.Up(packed);
        var ops = everyCpuPath && ctx.K is CpuKernels cpu ? CpuIntegerPaths(cpu, format)
            : [("", QuantizedOp(ctx))];
        foreach (var (path, op) in ops)
        {
            float* dy = ctx.Garbage<float>((long)M * N);
            op.QuantizedMatMul(format, M, N, K, dx, dw, dy);
            CompareQuantized(ctx, format, M, N, K, x, packed, expected, ctx.Down(dy, (long)M * N),
                $"{format.Name()} {M}x{N}x{K}{path}");
        }
    }

    /// <summary>The CPU backend's integer tiles and per-row dots, each at every ISA this CPU runs.</summary>
    private static List<(string, IQuantizedMatMul)> CpuIntegerPaths(CpuKernels cpu, QuantFormat format)
    {
        var ops = new List<(string, IQuantizedMatMul)>();
        foreach (var isa in Enum.GetValues<QuantIsa>().Where(QuantIsas.Supported))
            foreach (var path in new[] { QuantizedPath.Tiles, QuantizedPath.RowDots })
                ops.Add(($" ({path}, {isa})", new CpuQuantizedPath(cpu, isa, path)));
        return ops;
    }

    /// <summary>One forced path of the CPU backend's packed product.</summary>
    private sealed class CpuQuantizedPath(CpuKernels cpu, QuantIsa isa, QuantizedPath path) : IQuantizedMatMul
    {
        public void QuantizedMatMul(QuantFormat format, int M, int N, int K, float* x, byte* w, float* y) =>
            cpu.QuantizedMatMul(isa, format, M, N, K, x, w, y, path);
    }

    private static void CompareQuantized(KernelCheckContext ctx, QuantFormat format, int M, int N, int K, float[] x,
        byte[] packed, float[] expected, float[] actual, string what)
    {
        if (format == QuantFormat.BF16)
        {
            ctx.Close(actual, expected, 1e-5, what);
            return;
        }
        // rms over the output needs a few elements to mean anything (one near-zero y can be off by 5 % alone).
        if ((long)M * N >= 64) ctx.Close(actual, expected, 0.02, what);
        // The per-element bound of block-wise int8 activations, from the dequantised weights, and the rms error
        // against Σ|x·w| (not |y|, which cancellation can make small): random activations give about 0.2 %.
        float[] wf = BlockQuantizer.Dequantize(format, packed, N, K);
        double errSq = 0, magSq = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
            {
                double bound = 0, magnitude = 0;
                for (int b = 0; b < K / 32; b++)
                {
                    double amax = 0, wabs = 0;
                    for (int k = b * 32; k < b * 32 + 32; k++)
                    {
                        amax = Math.Max(amax, Math.Abs(x[(long)m * K + k]));
                        wabs += Math.Abs(wf[(long)n * K + k]);
                        magnitude += Math.Abs((double)x[(long)m * K + k] * wf[(long)n * K + k]);
                    }
                    bound += amax / 127 / 2 * wabs;
                }
                bound = bound * 1.001 + 1e-5 * magnitude + 1e-30;
                double err = Math.Abs((double)actual[(long)m * N + n] - expected[(long)m * N + n]);
                errSq += err * err;
                magSq += magnitude * magnitude;
                if (!(err <= bound))
                {
                    ctx.Require(false, $"{what}: y[{m}, {n}] = {actual[(long)m * N + n]}, reference "
                        + $"{expected[(long)m * N + n]}, error {err:E3} beyond the int8-activation bound {bound:E3}");
                    return;
                }
            }
        double rel = Math.Sqrt(errSq / Math.Max(magSq, 1e-300));
        ctx.Require(rel <= 0.01, $"{what}: rms error {rel:E3} of Σ|x·w|, more than 1 %");
    }

    /// <summary>
    /// The grouped product against the reference's one product per expert and set. The int8 activations of the
    /// CPU kernel move each output as in <see cref="CheckQuantized"/>; 2 % rms over the output catches a wrong
    /// expert, row or set (each gives an error of the order of the output itself).
    /// </summary>
    private static void CheckGrouped(KernelCheckContext ctx, QuantFormat format, int sets, int[] rowsPerGroup,
        int N, int K)
    {
        int groups = rowsPerGroup.Length;
        var offsets = new int[groups + 1];
        for (int g = 0; g < groups; g++) offsets[g + 1] = offsets[g] + rowsPerGroup[g];
        int M = offsets[groups];
        float[] x = ctx.Rand((long)M * K);
        var packed = new byte[sets * groups][];
        for (int i = 0; i < packed.Length; i++)
            packed[i] = format == QuantFormat.Q6_K ? RandomBlocks(ctx.Rng, format, N, K)
                : BlockQuantizer.Quantize(format, ctx.Rand((long)N * K, -0.1f, 0.1f), N, K);
        var expected = new float[sets][];
        for (int s = 0; s < sets; s++)
        {
            expected[s] = new float[(long)M * N];
            for (int g = 0; g < groups; g++)
                fixed (float* px = x, pe = expected[s])
                fixed (byte* pw = packed[s * groups + g])
                    ctx.Ref.QuantizedMatMul(format, rowsPerGroup[g], N, K, px + (long)offsets[g] * K, pw,
                        pe + (long)offsets[g] * N);
        }
        float* dx = ctx.Up(x);
        byte** dw = stackalloc byte*[sets * groups];
        for (int i = 0; i < packed.Length; i++) dw[i] = ctx.Up(packed[i]);
        float** dy = stackalloc float*[sets];
        for (int s = 0; s < sets; s++) dy[s] = ctx.Garbage<float>((long)M * N);
        fixed (int* off = offsets)
            QuantizedOp(ctx).GroupedQuantizedMatMul(format, sets, groups, off, N, K, dx, dw, dy);
        for (int s = 0; s < sets; s++)
            ctx.Close(ctx.Down(dy[s], (long)M * N), expected[s], format == QuantFormat.BF16 ? 1e-5 : 0.02,
                $"grouped {format.Name()} set {s}, groups [{string.Join(",", rowsPerGroup)}] x {N} x {K}");
    }

    /// <summary>Rows of random bytes with every block's fp16 scales replaced by sane values (±[2⁻¹⁰, 2⁻⁶)).</summary>
    private static byte[] RandomBlocks(Random rng, QuantFormat format, int rows, int k)
    {
        var bytes = new byte[rows * format.RowBytes(k)];
        rng.NextBytes(bytes);
        int bb = format.BlockBytes();
        int[] halfOffsets = format switch
        {
            QuantFormat.Q8_0 or QuantFormat.Q4_0 => [0],
            QuantFormat.Q4_K => [0, 2],
            QuantFormat.Q6_K => [Q6_KBlock.DOffset],
            _ => [0], // bf16: every "block" is one weight, itself an fp16-sized field
        };
        for (long b = 0; b < bytes.Length / bb; b++)
            foreach (int off in halfOffsets)
            {
                // Q4_K's dmin is non-negative by construction; the others may take either sign.
                bool positive = format == QuantFormat.Q4_K;
                float v = (float)(Math.Pow(2, -10 + 4 * rng.NextDouble()) * (positive || rng.Next(2) == 0 ? 1 : -1));
                ushort bits = format == QuantFormat.BF16
                    ? (ushort)(BitConverter.SingleToUInt32Bits(v * 64) >> 16)
                    : BitConverter.HalfToUInt16Bits((Half)v);
                bytes[b * bb + off] = (byte)bits;
                bytes[b * bb + off + 1] = (byte)(bits >> 8);
            }
        return bytes;
    }
}
