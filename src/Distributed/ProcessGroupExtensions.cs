namespace NativeReasoner.Distributed;

/// <summary>Blocking forms of the collectives and the helpers built from them.</summary>
public static class ProcessGroupExtensions
{
    public static void AllReduce(this IProcessGroup g, Tensor tensor, ReduceOperation op = ReduceOperation.Sum) =>
        g.AllReduceAsync(tensor, op).Wait();

    public static void Broadcast(this IProcessGroup g, Tensor tensor, int root) =>
        g.BroadcastAsync(tensor, root).Wait();

    public static void AllGather(this IProcessGroup g, Tensor input, Tensor output) =>
        g.AllGatherAsync(input, output).Wait();

    public static void ReduceScatter(this IProcessGroup g, Tensor input, Tensor output,
        ReduceOperation op = ReduceOperation.Sum) =>
        g.ReduceScatterAsync(input, output, op).Wait();

    public static void AllToAllV(this IProcessGroup g, Tensor input, ReadOnlySpan<int> sendCounts, Tensor output,
        ReadOnlySpan<int> recvCounts) => g.AllToAllVAsync(input, sendCounts, output, recvCounts).Wait();

    public static void Send(this IProcessGroup g, Tensor tensor, int destination, int tag = 0) =>
        g.SendAsync(tensor, destination, tag).Wait();

    public static void Receive(this IProcessGroup g, Tensor tensor, int source, int tag = 0) =>
        g.ReceiveAsync(tensor, source, tag).Wait();

    public static void Barrier(this IProcessGroup g) => g.BarrierAsync().Wait();

    /// <summary>
    /// What every rank will send to this one: recvCounts[r] = sendCounts[Rank] of rank r (the first half of an
    /// uneven all-to-all, when the receiver cannot know the counts in advance). The counts travel as a tensor on
    /// <paramref name="device"/> (NCCL moves device memory only; host by default).
    /// </summary>
    public static int[] ExchangeCounts(this IProcessGroup g, ReadOnlySpan<int> sendCounts, Device? device = null)
    {
        if (sendCounts.Length != g.Size)
            throw new ProcessGroupException(
                $"ExchangeCounts: {sendCounts.Length} counts for a group of {g.Size} ranks");
        device ??= Device.Cpu;
        using var send = Tensor.FromArray(sendCounts, [g.Size], device);
        using var recv = Tensor.Zeros([g.Size], DType.Int32, device);
        var ones = Enumerable.Repeat(1, g.Size).ToArray();
        g.AllToAllV(send, ones, recv, ones);
        return recv.ToInt64Array().Select(v => (int)v).ToArray();
    }

    /// <summary>
    /// Uneven all-to-all that finds the receive counts itself: returns the received rows [Σ recvCounts, …] (a new
    /// tensor on the input's device) and the counts, which the backward exchange sends back with.
    /// </summary>
    public static (Tensor Output, int[] RecvCounts) AllToAllV(this IProcessGroup g, Tensor input,
        ReadOnlySpan<int> sendCounts)
    {
        var recvCounts = g.ExchangeCounts(sendCounts, input.Device);
        var shape = input.Shape.ToArray();
        if (shape.Length == 0)
            throw new ProcessGroupException("AllToAllV: the input needs a row dimension (it is a scalar)");
        shape[0] = recvCounts.Sum();
        var output = Tensor.Empty(shape, input.DType, input.Device);
        try
        {
            g.AllToAllV(input, sendCounts, output, recvCounts);
        }
        catch
        {
            output.Dispose();
            throw;
        }
        return (output, recvCounts);
    }

    /// <summary>
    /// Every rank's bytes (any length, 0 included), in rank order, on every rank: the lengths are gathered first,
    /// then the payloads padded to the longest. For small messages (results, texts), not bulk tensors.
    /// </summary>
    public static byte[][] AllGatherBytes(this IProcessGroup g, byte[] mine)
    {
        ArgumentNullException.ThrowIfNull(mine);
        if (g.Size == 1) return [mine];
        long[] lengths;
        using (var length = Tensor.FromArray([(long)mine.Length], [1], Device.Cpu))
        using (var all = Tensor.Zeros([g.Size], DType.Int64, Device.Cpu))
        {
            g.AllGather(length, all);
            lengths = all.ToInt64Array();
        }
        // Four bytes to an int32 element (the collectives move whole elements).
        int width = checked((int)((lengths.Max() + 3) / 4));
        if (width == 0) return lengths.Select(_ => Array.Empty<byte>()).ToArray();
        var words = new int[width];
        Buffer.BlockCopy(mine, 0, words, 0, mine.Length);
        int[] gathered;
        using (var send = Tensor.FromArray(words, [width], Device.Cpu))
        using (var all = Tensor.Zeros([g.Size * width], DType.Int32, Device.Cpu))
        {
            g.AllGather(send, all);
            gathered = all.ToInt64Array().Select(v => (int)v).ToArray();
        }
        var result = new byte[g.Size][];
        for (int r = 0; r < g.Size; r++)
        {
            result[r] = new byte[lengths[r]];
            Buffer.BlockCopy(gathered, r * width * 4, result[r], 0, result[r].Length);
        }
        return result;
    }

    /// <summary>The sum over the ranks of one count (exact, int64).</summary>
    public static long SumCount(this IProcessGroup g, long value)
    {
        if (g.Size == 1) return value;
        using var t = Tensor.FromArray([value], [1], Device.Cpu);
        g.AllReduce(t);
        return t.ToInt64Array()[0];
    }

    /// <summary>The largest over the ranks of one count (a flag, a stop reason).</summary>
    public static long MaxCount(this IProcessGroup g, long value)
    {
        if (g.Size == 1) return value;
        using var t = Tensor.FromArray([value], [1], Device.Cpu);
        g.AllReduce(t, ReduceOperation.Max);
        return t.ToInt64Array()[0];
    }

    /// <summary>The sum over the ranks of one float32 value (a loss).</summary>
    public static float SumValue(this IProcessGroup g, float value)
    {
        if (g.Size == 1) return value;
        using var t = Tensor.FromArray([value], [1], Device.Cpu);
        g.AllReduce(t);
        return t.ToArray()[0];
    }
}
