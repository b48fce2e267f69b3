// Source: ggml's quantize_row_q8_0 / q8_K (ggml-quants.c): activations quantised per block of 32 for integer dots.
using System.Runtime.CompilerServices;

namespace NativeReasoner.Kernels.Cpu.Quant;

/// <summary>
/// Rows of activations as int8 blocks of 32, for the integer dot products with Q8_0 / Q4_0 / Q4_K weights:
/// per block, scale = max|x| / 127 and q = round(x / scale) (half to even), plus Σq of the block (the
/// offset terms of Q4_0 and Q4_K). Unlike ggml's block_q8_0 the scale stays float32 (no fp16 rounding): one
/// source of error fewer. The error this adds to a dot product is at most Σ_blocks scale/2 · Σ|w| of the block.
/// Storage: one native block rented from the GEMM scratch: q [rows·K] bytes, then scales and sums [rows·K/32].
/// </summary>
internal unsafe struct Q8Activations
{
    public const int Block = 32;
    public sbyte* Q;
    public float* Scale;
    public int* Sum;
    public int BlocksPerRow;

    /// <summary>Floats of scratch <see cref="Quantize"/> needs for rows × k.</summary>
    public static long ScratchFloats(int rows, int k) => ((long)rows * k + 8L * rows * (k / Block)) / 4 + 16;

    /// <summary>x: [rows, k] (k a multiple of 32) into the scratch at <paramref name="scratch"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Q8Activations Quantize(float* x, int rows, int k, float* scratch)
    {
        int nb = k / Block;
        long blocks = (long)rows * nb;
        var a = new Q8Activations
        {
            Q = (sbyte*)scratch,
            BlocksPerRow = nb,
        };
        a.Scale = (float*)((byte*)scratch + (long)rows * k);
        a.Sum = (int*)(a.Scale + blocks);
        for (long b = 0; b < blocks; b++)
        {
            float* xb = x + b * Block;
            float amax = 0f;
            for (int j = 0; j < Block; j++) amax = MathF.Max(amax, MathF.Abs(xb[j]));
            float d = amax / 127f, id = amax > 0f ? 127f / amax : 0f;
            sbyte* q = a.Q + b * Block;
            int sum = 0;
            for (int j = 0; j < Block; j++)
            {
                int v = (int)MathF.Round(xb[j] * id);
                q[j] = (sbyte)v;
                sum += v;
            }
            a.Scale[b] = d;
            a.Sum[b] = sum;
        }
        return a;
    }
}
