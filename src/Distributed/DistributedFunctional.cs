// Source: expert parallelism's token dispatch and combine (GShard, arXiv:2006.16668; DeepSeek-V3, arXiv:2412.19437
// §3.2): an all-to-all whose gradient is the all-to-all with the counts swapped.
namespace NativeReasoner.Distributed;

/// <summary>Exchanges between ranks that autograd differentiates through.</summary>
public static class DistributedFunctional
{
    /// <summary>
    /// x: [Σ sendCounts, …] → [Σ recvCounts, …]: rows to each rank, as <see cref="IProcessGroup.AllToAllVAsync"/>
    /// (recvCounts from <see cref="ProcessGroupExtensions.ExchangeCounts"/>). Backward sends each row's gradient
    /// home by the reverse exchange, so every rank must run its backward through the same exchanges in the same
    /// order (true of layers that all ranks run in step). A <paramref name="counter"/> adds the bytes this rank
    /// sends to other ranks, forward and backward.
    /// </summary>
    public static Tensor AllToAllV(IProcessGroup group, Tensor x, int[] sendCounts, int[] recvCounts,
        CommunicationCounter? counter = null)
    {
        // The exchange itself is not on the tape (the node below is): a detached, contiguous view or copy of x.
        using var detached = x.Detach();
        using var input = detached.Contiguous();
        var shape = x.Shape.ToArray();
        if (shape.Length == 0)
            throw new ProcessGroupException("AllToAllV: the input needs a row dimension (it is a scalar)");
        shape[0] = recvCounts.Sum();
        var output = Tensor.Empty(shape, x.DType, x.Device);
        group.AllToAllV(input, sendCounts, output, recvCounts);
        counter?.AddRows(group.Rank, sendCounts, RowBytes(x));
        var inputShape = x.Shape.ToArray();
        return Tensor.Record(output, "all_to_all_v", [x], grad =>
        {
            using var g = grad.Contiguous();
            var back = Tensor.Empty(inputShape, g.DType, g.Device);
            group.AllToAllV(g, recvCounts, back, sendCounts);
            counter?.AddRows(group.Rank, recvCounts, RowBytes(g));
            return [back];
        });
    }

    private static long RowBytes(Tensor t) => t.Shape[0] == 0 ? 0 : t.Numel / t.Shape[0] * t.DType.SizeOf();
}
