// Block-wise FP8 weights of DeepSeek-V3 (arXiv:2412.19437, section 3.3.2): each 128×128 tile of a weight has one
// float32 scale, stored beside the weight as "<name>_scale_inv". The arithmetic follows weight_dequant in the
// official inference/kernel.py of deepseek-ai/DeepSeek-V3: the byte is widened to float32, then y = x · s in
// float32 (one rounding), optionally stored as bfloat16.
using NativeReasoner.Kernels;

namespace NativeReasoner.IO;

/// <summary>
/// Dequantisation of a block-scaled float8_e4m3fn matrix: W[i, j] = q[i, j] · s[i / blockRows, j / blockCols],
/// where the scale matrix is [⌈rows / blockRows⌉, ⌈cols / blockCols⌉] and the last row and column of blocks may
/// be partial.
/// </summary>
public static class Fp8BlockDequant
{
    /// <summary>Suffix of the scale tensor's name in DeepSeek-V3 checkpoints.</summary>
    public const string ScaleSuffix = "_scale_inv";

    /// <summary>The default block of DeepSeek-V3's quantization_config.weight_block_size.</summary>
    public const int DefaultBlock = 128;

    /// <summary>Shape of the scale matrix for a [rows, cols] weight.</summary>
    public static (int Rows, int Cols) ScaleShape(int rows, int cols, int blockRows, int blockCols)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockCols);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        return ((rows + blockRows - 1) / blockRows, (cols + blockCols - 1) / blockCols);
    }

    /// <summary>q: [rows, cols] codes, scales: [⌈rows/br⌉, ⌈cols/bc⌉] → destination: [rows, cols].</summary>
    public static void Dequantize(ReadOnlySpan<byte> q, int rows, int cols, ReadOnlySpan<float> scales,
        int blockRows, int blockCols, Span<float> destination)
    {
        int scaleCols = Check(q, rows, cols, scales, blockRows, blockCols, destination.Length);
        for (int i = 0; i < rows; i++)
        {
            ReadOnlySpan<byte> qRow = q.Slice(i * cols, cols);
            ReadOnlySpan<float> sRow = scales.Slice(i / blockRows * scaleCols, scaleCols);
            Span<float> dRow = destination.Slice(i * cols, cols);
            for (int j0 = 0, b = 0; j0 < cols; j0 += blockCols, b++)
            {
                float s = sRow[b];
                int j1 = Math.Min(j0 + blockCols, cols);
                for (int j = j0; j < j1; j++) dRow[j] = Float8E4M3.ToFloat(qRow[j]) * s;
            }
        }
    }

    /// <summary>
    /// As <see cref="Dequantize"/>, with each float32 product rounded to bfloat16 (round to nearest even, NaN kept
    /// a quiet NaN): the "dequantise once to bf16" form, half the memory of float32.
    /// </summary>
    public static void DequantizeToBFloat16(ReadOnlySpan<byte> q, int rows, int cols, ReadOnlySpan<float> scales,
        int blockRows, int blockCols, Span<ushort> destination)
    {
        int scaleCols = Check(q, rows, cols, scales, blockRows, blockCols, destination.Length);
        for (int i = 0; i < rows; i++)
        {
            ReadOnlySpan<byte> qRow = q.Slice(i * cols, cols);
            ReadOnlySpan<float> sRow = scales.Slice(i / blockRows * scaleCols, scaleCols);
            Span<ushort> dRow = destination.Slice(i * cols, cols);
            for (int j0 = 0, b = 0; j0 < cols; j0 += blockCols, b++)
            {
                float s = sRow[b];
                int j1 = Math.Min(j0 + blockCols, cols);
                for (int j = j0; j < j1; j++) dRow[j] = RoundToBFloat16(Float8E4M3.ToFloat(qRow[j]) * s);
            }
        }
    }

    /// <summary>float32 → bfloat16 bits, round to nearest even (what torch's .to(torch.bfloat16) does).</summary>
    public static ushort RoundToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x0040);
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }

    private static int Check(ReadOnlySpan<byte> q, int rows, int cols, ReadOnlySpan<float> scales,
        int blockRows, int blockCols, int destinationLength)
    {
        var (sr, sc) = ScaleShape(rows, cols, blockRows, blockCols);
        long n = (long)rows * cols;
        if (q.Length != n)
            throw new ArgumentException($"fp8 dequant: {q.Length} codes for a [{rows}, {cols}] weight (expected {n})",
                nameof(q));
        if (scales.Length != (long)sr * sc)
            throw new ArgumentException(
                $"fp8 dequant: {scales.Length} scales for a [{rows}, {cols}] weight in " +
                $"{blockRows}×{blockCols} blocks (expected [{sr}, {sc}] = {(long)sr * sc})", nameof(scales));
        if (destinationLength != n)
            throw new ArgumentException($"fp8 dequant: destination holds {destinationLength} values, expected {n}");
        return sc;
    }

    /// <summary>
    /// Reads the FP8 weight <paramref name="name"/> of <paramref name="checkpoint"/> and its scale
    /// <c>name + "_scale_inv"</c> (which may sit in another shard), checks both, and writes the dequantised
    /// float32 weight into <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="SafetensorsException">The weight is not a 2-D F8_E4M3 tensor, or the scale is missing,
    /// not floating point, or not [⌈rows/br⌉, ⌈cols/bc⌉].</exception>
    public static void ReadDequantized(SafetensorsCheckpoint checkpoint, string name, int blockRows, int blockCols,
        Span<float> destination)
    {
        var (rows, cols, scales) = ReadChecked(checkpoint, name, blockRows, blockCols);
        Dequantize(checkpoint.GetBytes(name), rows, cols, scales, blockRows, blockCols, destination);
    }

    /// <summary>As <see cref="ReadDequantized"/>, rounded to bfloat16.</summary>
    public static void ReadDequantizedBFloat16(SafetensorsCheckpoint checkpoint, string name, int blockRows,
        int blockCols, Span<ushort> destination)
    {
        var (rows, cols, scales) = ReadChecked(checkpoint, name, blockRows, blockCols);
        DequantizeToBFloat16(checkpoint.GetBytes(name), rows, cols, scales, blockRows, blockCols, destination);
    }

    private static (int Rows, int Cols, float[] Scales) ReadChecked(SafetensorsCheckpoint checkpoint,
        string name, int blockRows, int blockCols)
    {
        SafetensorsEntry w = checkpoint.GetEntry(name);
        string file = checkpoint.GetFile(name).FilePath;
        if (w.DType != DType.Float8E4M3)
            throw new SafetensorsException(file, name,
                $"expected an F8_E4M3 weight, found {SafetensorsFormat.ToDTypeString(w.DType)}");
        if (w.Shape.Length != 2 || w.Shape[0] > int.MaxValue || w.Shape[1] > int.MaxValue)
            throw new SafetensorsException(file, name,
                $"an FP8 weight must be a matrix [rows, cols], found shape {SafetensorsFormat.ShapeString(w.Shape)}");
        int rows = (int)w.Shape[0], cols = (int)w.Shape[1];
        string scaleName = name + ScaleSuffix;
        if (!checkpoint.Contains(scaleName))
            throw new SafetensorsException(file, name,
                $"FP8 weight has no block scale: the checkpoint lacks '{scaleName}'");
        SafetensorsEntry s = checkpoint.GetEntry(scaleName);
        string scaleFile = checkpoint.GetFile(scaleName).FilePath;
        var (sr, sc) = ScaleShape(rows, cols, blockRows, blockCols);
        if (s.Shape.Length != 2 || s.Shape[0] != sr || s.Shape[1] != sc)
            throw new SafetensorsException(scaleFile, scaleName,
                $"scale has shape {SafetensorsFormat.ShapeString(s.Shape)} but a [{rows}, {cols}] weight in " +
                $"{blockRows}×{blockCols} blocks needs [{sr}, {sc}]");
        if (!s.DType.IsFloating())
            throw new SafetensorsException(scaleFile, scaleName,
                $"scale must be F32, BF16 or F16, found {SafetensorsFormat.ToDTypeString(s.DType)}");
        return (rows, cols, checkpoint.ReadFloat32(scaleName));
    }
}
