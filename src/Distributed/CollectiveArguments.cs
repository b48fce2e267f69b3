namespace NativeReasoner.Distributed;

/// <summary>The checks every backend makes before a collective starts, so a bad call fails the same way on
/// all.</summary>
internal static class CollectiveArguments
{
    public static void Contiguous(Tensor t, string op, string what = "tensor")
    {
        if (t.IsDisposed) throw new ProcessGroupException($"{op}: the {what} was disposed");
        if (!t.IsContiguous)
            throw new ProcessGroupException(
                $"{op}: the {what} {Tensor.FormatShape(t.Shape)} must be contiguous (call Contiguous() first)");
    }

    public static void Reducible(Tensor t, string op)
    {
        if (t.DType is not (DType.Float32 or DType.Int32 or DType.Int64))
            throw new ProcessGroupException($"{op}: reductions take float32, int32 or int64 tensors, got {t.DType}");
    }

    public static void Rank(int rank, int size, string op, string what)
    {
        if (rank < 0 || rank >= size)
            throw new ProcessGroupException($"{op}: {what} rank {rank} is outside the group's 0..{size - 1}");
    }

    /// <summary>Checks that <paramref name="big"/> is [factor · n, …rest] for <paramref name="small"/> [n,
    /// …rest].</summary>
    public static void Stacked(Tensor small, Tensor big, int factor, string op, string smallName, string bigName)
    {
        Contiguous(small, op, smallName);
        Contiguous(big, op, bigName);
        if (small.DType != big.DType)
            throw new ProcessGroupException(
                $"{op}: {smallName} is {small.DType}, {bigName} {big.DType}; they must match");
        if (small.Rank == 0)
            throw new ProcessGroupException($"{op}: the {smallName} needs a row dimension (it is a scalar)");
        var expected = small.Shape.ToArray();
        expected[0] = checked(expected[0] * factor);
        if (!big.Shape.SequenceEqual(expected))
            throw new ProcessGroupException(
                $"{op}: {bigName} must be {Tensor.FormatShape(expected)} ({factor} × {smallName} " +
                    $"{Tensor.FormatShape(small.Shape)}), got {Tensor.FormatShape(big.Shape)}");
    }

    /// <summary>Checks counts against the group and the tensors; returns the bytes of one row.</summary>
    public static long AllToAllV(Tensor input, ReadOnlySpan<int> sendCounts, Tensor output,
        ReadOnlySpan<int> recvCounts, int size)
    {
        const string op = "AllToAllV";
        Contiguous(input, op, "input");
        Contiguous(output, op, "output");
        if (input.DType != output.DType)
            throw new ProcessGroupException($"{op}: input is {input.DType}, output {output.DType}; they must match");
        if (input.Rank == 0 || output.Rank == 0)
            throw new ProcessGroupException($"{op}: input and output need a row dimension");
        if (!input.Shape[1..].SequenceEqual(output.Shape[1..]))
            throw new ProcessGroupException(
                $"{op}: rows of input {Tensor.FormatShape(input.Shape)} and output " +
                    $"{Tensor.FormatShape(output.Shape)} differ in shape");
        Counts(sendCounts, size, input.Shape[0], "send", "input");
        Counts(recvCounts, size, output.Shape[0], "receive", "output");
        long row = input.DType.SizeOf();
        for (int i = 1; i < input.Rank; i++) row *= input.Shape[i];
        return row;
    }

    private static void Counts(ReadOnlySpan<int> counts, int size, int rows, string kind, string tensor)
    {
        if (counts.Length != size)
            throw new ProcessGroupException($"AllToAllV: {counts.Length} {kind} counts for a group of {size} ranks");
        long sum = 0;
        for (int r = 0; r < counts.Length; r++)
        {
            if (counts[r] < 0)
                throw new ProcessGroupException($"AllToAllV: {kind} count for rank {r} is {counts[r]}, must be ≥ 0");
            sum += counts[r];
        }
        if (sum != rows)
            throw new ProcessGroupException($"AllToAllV: {kind} counts sum to {sum} rows but the {tensor} has {rows}");
    }
}
