namespace NativeReasoner.Model;

/// <summary>
/// Which rows (sequences) of an <see cref="IKvCache"/> a cached forward reads and writes: input row i belongs to
/// cache row rows[i]. A serving scheduler keeps one cache of many sequence slots and steps only the running ones;
/// the identity (input row i = cache row i) is the plain batched decode.
/// </summary>
public static class CacheRows
{
    // Shared identity rows, so the plain decode path allocates no array per layer and step.
    private static readonly int[] SharedIdentity = Enumerable.Range(0, 1024).ToArray();

    /// <summary>Rows 0 … n−1.</summary>
    public static ReadOnlySpan<int> Identity(int n) =>
        n <= SharedIdentity.Length ? SharedIdentity.AsSpan(0, n) : Enumerable.Range(0, n).ToArray();

    public static bool IsIdentity(ReadOnlySpan<int> rows)
    {
        for (int i = 0; i < rows.Length; i++)
            if (rows[i] != i) return false;
        return true;
    }

    public static bool AllEqual(ReadOnlySpan<int> values)
    {
        for (int i = 1; i < values.Length; i++)
            if (values[i] != values[0]) return false;
        return true;
    }

    /// <summary>
    /// Throws unless there is one row per input sequence, each within the cache's batch and none twice (two input
    /// rows writing one cache row would corrupt it).
    /// </summary>
    public static void Validate(ReadOnlySpan<int> rows, int inputBatch, IKvCache cache)
    {
        if (rows.Length != inputBatch)
            throw new ArgumentException(
                $"cache rows: one per input sequence expected ({inputBatch}), got {rows.Length}");
        Span<bool> seen = cache.Batch <= 1024 ? stackalloc bool[cache.Batch] : new bool[cache.Batch];
        foreach (int r in rows)
        {
            if (r < 0 || r >= cache.Batch)
                throw new ArgumentException($"cache row {r} is outside the cache's {cache.Batch} sequences");
            if (seen[r]) throw new ArgumentException($"cache row {r} is listed twice");
            seen[r] = true;
        }
    }
}
