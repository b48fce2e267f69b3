namespace NativeReasoner.Model;

/// <summary>
/// The hidden states a generation prefill sends through the vocabulary head: one position per sequence (the last
/// prompt token), not all T. The head is the largest product of a small model's prefill (V = 151,936 rows for
/// Qwen), so running it on B rows instead of B·T is most of a short model's prefill time.
/// </summary>
public static class LastPositions
{
    /// <summary>
    /// h: [B, T, C] → [B, 1, C], row b taken at position <paramref name="positions"/>[b] (T−1 for every row
    /// when <paramref name="positions"/> is empty).
    /// </summary>
    public static Tensor Select(Tensor h, ReadOnlySpan<int> positions)
    {
        if (h.Rank != 3)
            throw new ArgumentException($"hidden states must be [B, T, C], got {Tensor.FormatShape(h.Shape)}");
        int b = h.Shape[0], t = h.Shape[1], c = h.Shape[2];
        Validate(positions, b, t);
        if (positions.IsEmpty && t == 1) return h;
        // One sequence: a view of its row (contiguous, no copy).
        if (b == 1) return h.Narrow(1, positions.IsEmpty ? t - 1 : positions[0], 1);
        var index = new long[b];
        for (int i = 0; i < b; i++) index[i] = (long)i * t + (positions.IsEmpty ? t - 1 : positions[i]);
        using var flat = h.Reshape(b * t, c);                                                    // [B·T, C]
        using var ids = Tensor.FromArray(index, [b], h.Device);
        using var picked = flat.IndexSelect(0, ids);                                             // [B, C]
        return picked.Reshape(b, 1, c);
    }

    /// <summary>Throws unless there is one position per sequence, each within 0..T−1.</summary>
    public static void Validate(ReadOnlySpan<int> positions, int batch, int length)
    {
        if (positions.IsEmpty) return;
        if (positions.Length != batch)
            throw new ArgumentException(
                $"last positions: one per sequence expected ({batch}), got {positions.Length}");
        for (int i = 0; i < positions.Length; i++)
            if (positions[i] < 0 || positions[i] >= length)
                throw new ArgumentException(
                    $"last positions: sequence {i}'s position {positions[i]} is outside the prompt's 0..{length - 1}");
    }
}
