// Source: llama.cpp's convert_hf_to_gguf.py, LlamaModel.permute: HF's Llama checkpoints rotate halves of each head
// (rotate_half), ggml's llama rope rotates adjacent pairs, so the converter reorders the rows of q_proj and k_proj.
namespace NativeReasoner.Model.Gguf;

/// <summary>
/// The row order of llama-architecture q/k projections in GGUF. Within each head of d rows, GGUF row 2·i + j holds HF
/// row j·d/2 + i (i &lt; d/2, j ∈ {0, 1}): the halves are interleaved. Rows are whole (any type, any row size), so
/// the permutation works on bytes. Qwen2/Qwen3 use ggml's NEOX rope and keep HF's order.
/// </summary>
public static class LlamaRopePermutation
{
    /// <summary>The HF row stored at GGUF row <paramref name="ggufRow"/> of a projection with heads of headDim
    /// rows.</summary>
    public static long HfRowOf(long ggufRow, int headDim)
    {
        long head = ggufRow / headDim, r = ggufRow % headDim;
        long i = r / 2, j = r % 2;
        return head * headDim + j * (headDim / 2) + i;
    }

    /// <summary>
    /// Copies rows from <paramref name="source"/> (rows of <paramref name="rowBytes"/> bytes) into
    /// <paramref name="destination"/>: toGguf = HF order → GGUF order, else GGUF → HF.
    /// </summary>
    public static void PermuteRows(ReadOnlySpan<byte> source, Span<byte> destination, long rowBytes, int headDim,
        bool toGguf)
    {
        if (headDim % 2 != 0) throw new ArgumentException($"head_dim {headDim} must be even for rope", nameof(headDim));
        long rows = source.Length / rowBytes;
        if (rows * rowBytes != source.Length || rows % headDim != 0 || destination.Length != source.Length)
            throw new ArgumentException(
                $"{source.Length} bytes are not whole heads of {headDim} rows of {rowBytes} bytes");
        int rb = checked((int)rowBytes);
        for (long g = 0; g < rows; g++)
        {
            long h = HfRowOf(g, headDim);
            long from = toGguf ? h : g, to = toGguf ? g : h;
            source.Slice(checked((int)(from * rb)), rb).CopyTo(destination.Slice(checked((int)(to * rb)), rb));
        }
    }
}
