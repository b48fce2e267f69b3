// Source: the ProcessGroup interface of PyTorch's torch.distributed (one interface; NCCL for GPUs, MPI for CPUs).
namespace NativeReasoner.Distributed;

/// <summary>How a reduction combines the ranks' values.</summary>
public enum ReduceOperation
{
    Sum,
    Max,
    Min,
}

/// <summary>
/// A group of processes that exchange tensors: every rank calls the same collectives in the same order.
/// Collectives start asynchronously and return an <see cref="IWork"/>; <see cref="IWork.Wait"/> blocks until this
/// rank's part is done or <see cref="Timeout"/> passes (then a <see cref="CollectiveTimeoutException"/> names the
/// operation — a dead or hung rank never leaves the others waiting silently). Tensors must be contiguous; on a
/// device whose memory is not host memory they are staged through host memory (<see cref="MpiProcessGroup"/>).
/// Buffers must stay alive, and unread and unwritten by others, until the operation's Wait returns.
/// </summary>
public interface IProcessGroup : IDisposable
{
    /// <summary>This process's index in the group, 0 ≤ Rank &lt; Size.</summary>
    int Rank { get; }

    int Size { get; }

    /// <summary>What carries the messages ("local", "mpi", "nccl"), for logs and errors.</summary>
    string Backend { get; }

    /// <summary>How long <see cref="IWork.Wait"/> waits for one operation before it declares the job broken.</summary>
    TimeSpan Timeout { get; set; }

    /// <summary>Reduces <paramref name="tensor"/> elementwise over the ranks, in place (float32, int32,
    /// int64).</summary>
    IWork AllReduceAsync(Tensor tensor, ReduceOperation op = ReduceOperation.Sum);

    /// <summary>Overwrites <paramref name="tensor"/> on every rank with the one of <paramref name="root"/> (any
    /// dtype).</summary>
    IWork BroadcastAsync(Tensor tensor, int root);

    /// <summary>
    /// output: [Size · n, …] = the ranks' input [n, …] stacked in rank order along dimension 0 (any dtype).
    /// </summary>
    IWork AllGatherAsync(Tensor input, Tensor output);

    /// <summary>
    /// input: [Size · n, …] on every rank; output: [n, …] = block Rank of the elementwise reduction over the
    /// ranks.
    /// </summary>
    IWork ReduceScatterAsync(Tensor input, Tensor output, ReduceOperation op = ReduceOperation.Sum);

    /// <summary>
    /// All-to-all with uneven counts along dimension 0 (MoE token dispatch): rows
    /// [Σ sendCounts[0..r), Σ sendCounts[0..r]) of <paramref name="input"/> go to rank r, and rows from rank r land
    /// at [Σ recvCounts[0..r), …) of <paramref name="output"/>. Counts are in rows (any may be 0); recvCounts on
    /// rank q must equal sendCounts[q] of every sender (<see cref="ProcessGroupExtensions.ExchangeCounts"/> gets
    /// them). The backward of a dispatch is the same call with the counts swapped.
    /// </summary>
    IWork AllToAllVAsync(Tensor input, ReadOnlySpan<int> sendCounts, Tensor output, ReadOnlySpan<int> recvCounts);

    /// <summary>Sends the whole of <paramref name="tensor"/> to rank <paramref name="destination"/>.</summary>
    IWork SendAsync(Tensor tensor, int destination, int tag = 0);

    /// <summary>Receives into the whole of <paramref name="tensor"/> a message of the same size from <paramref
    /// name="source"/>.</summary>
    IWork ReceiveAsync(Tensor tensor, int source, int tag = 0);

    IWork BarrierAsync();

    /// <summary>
    /// Splits the group (every rank calls it): ranks with the same <paramref name="color"/> form a new group, ordered
    /// by <paramref name="key"/> then by rank; a negative color joins none and gets null.
    /// </summary>
    IProcessGroup? Split(int color, int key);

    /// <summary>Ends the whole job at once (every rank of every group), after printing why on this rank.</summary>
    void Abort(string reason, int exitCode = 1);
}

/// <summary>A started operation.</summary>
public interface IWork
{
    /// <summary>True once this rank's part is done (polls; never blocks).</summary>
    bool IsCompleted { get; }

    /// <summary>Blocks until done; after the group's timeout throws <see cref="CollectiveTimeoutException"/>.</summary>
    void Wait();
}

/// <summary>An operation did not complete in time: another rank died, hangs or called a different collective.</summary>
public sealed class CollectiveTimeoutException(string message) : Exception(message);

/// <summary>A collective got arguments it cannot work with (shape, dtype, counts, ranks).</summary>
public sealed class ProcessGroupException(string message) : Exception(message);
