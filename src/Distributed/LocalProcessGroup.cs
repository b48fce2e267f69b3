namespace NativeReasoner.Distributed;

/// <summary>
/// The one-process group (size 1): every collective is the identity (a copy where input and output differ), so
/// code written for a process group runs unchanged without mpirun, and costs nothing. A send to itself is matched
/// with a receive of the same tag, in posting order, as MPI matches them.
/// </summary>
public sealed class LocalProcessGroup : IProcessGroup
{
    private readonly object _lock = new();
    private readonly Dictionary<int, Queue<byte[]>> _sent = [];
    private readonly Dictionary<int, Queue<(Tensor Tensor, LocalReceive Work)>> _waiting = [];

    public int Rank => 0;
    public int Size => 1;
    public string Backend => "local";
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    public IWork AllReduceAsync(Tensor tensor, ReduceOperation op = ReduceOperation.Sum)
    {
        CollectiveArguments.Contiguous(tensor, "AllReduce");
        CollectiveArguments.Reducible(tensor, "AllReduce");
        return CompletedWork.Instance;
    }

    public IWork BroadcastAsync(Tensor tensor, int root)
    {
        CollectiveArguments.Contiguous(tensor, "Broadcast");
        CollectiveArguments.Rank(root, 1, "Broadcast", "root");
        return CompletedWork.Instance;
    }

    public IWork AllGatherAsync(Tensor input, Tensor output)
    {
        CollectiveArguments.Stacked(input, output, 1, "AllGather", "input", "output");
        Copy(input, output);
        return CompletedWork.Instance;
    }

    public IWork ReduceScatterAsync(Tensor input, Tensor output, ReduceOperation op = ReduceOperation.Sum)
    {
        CollectiveArguments.Stacked(output, input, 1, "ReduceScatter", "output", "input");
        CollectiveArguments.Reducible(input, "ReduceScatter");
        Copy(input, output);
        return CompletedWork.Instance;
    }

    public IWork AllToAllVAsync(Tensor input, ReadOnlySpan<int> sendCounts, Tensor output, ReadOnlySpan<int> recvCounts)
    {
        CollectiveArguments.AllToAllV(input, sendCounts, output, recvCounts, 1);
        Copy(input, output);
        return CompletedWork.Instance;
    }

    public IWork SendAsync(Tensor tensor, int destination, int tag = 0)
    {
        CollectiveArguments.Contiguous(tensor, "Send");
        CollectiveArguments.Rank(destination, 1, "Send", "destination");
        var bytes = new byte[tensor.Numel * tensor.DType.SizeOf()];
        tensor.CopyToHost(bytes);
        lock (_lock)
        {
            if (_waiting.TryGetValue(tag, out var q) && q.Count > 0)
            {
                var (target, work) = q.Dequeue();
                Deliver(bytes, target);
                work.Complete();
            }
            else
            {
                if (!_sent.TryGetValue(tag, out var messages)) _sent[tag] = messages = new Queue<byte[]>();
                messages.Enqueue(bytes);
            }
        }
        return CompletedWork.Instance;
    }

    public IWork ReceiveAsync(Tensor tensor, int source, int tag = 0)
    {
        CollectiveArguments.Contiguous(tensor, "Receive");
        CollectiveArguments.Rank(source, 1, "Receive", "source");
        lock (_lock)
        {
            if (_sent.TryGetValue(tag, out var messages) && messages.Count > 0)
            {
                Deliver(messages.Dequeue(), tensor);
                return CompletedWork.Instance;
            }
            var work = new LocalReceive(this, tag);
            if (!_waiting.TryGetValue(tag, out var q)) _waiting[tag] = q = new Queue<(Tensor, LocalReceive)>();
            q.Enqueue((tensor, work));
            return work;
        }
    }

    private static void Deliver(byte[] message, Tensor target)
    {
        long expected = target.Numel * target.DType.SizeOf();
        if (message.Length != expected)
            throw new ProcessGroupException(
                $"Receive: the message holds {message.Length} bytes, the tensor {Tensor.FormatShape(target.Shape)} " +
                    $"{target.DType} {expected}");
        target.CopyFromHost(message);
    }

    /// <summary>A receive posted before its send: completed by the send (from this or another thread).</summary>
    private sealed class LocalReceive(LocalProcessGroup group, int tag) : IWork
    {
        private volatile bool _done;

        public void Complete() => _done = true;

        public bool IsCompleted => _done;

        public void Wait()
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!_done)
            {
                if (clock.Elapsed > group.Timeout)
                    throw new CollectiveTimeoutException(
                        $"rank 0 of 1: Receive (tag {tag}) found no matching Send within " +
                            $"{group.Timeout.TotalSeconds:0.#} s");
                Thread.Sleep(1);
            }
        }
    }

    public IWork BarrierAsync() => CompletedWork.Instance;

    public IProcessGroup? Split(int color, int key) => color < 0 ? null : new LocalProcessGroup();

    public void Abort(string reason, int exitCode = 1)
    {
        Console.Error.WriteLine($"rank 0 of 1: aborting the job: {reason}");
        Environment.Exit(exitCode);
    }

    public void Dispose()
    {
    }

    private static unsafe void Copy(Tensor from, Tensor to)
    {
        if (ReferenceEquals(from, to) || from.Numel == 0) return;
        var bytes = new byte[from.Numel * from.DType.SizeOf()];
        from.CopyToHost(bytes);
        to.CopyFromHost(bytes);
    }
}

/// <summary>An operation that finished when it was started.</summary>
public sealed class CompletedWork : IWork
{
    public static CompletedWork Instance { get; } = new();

    public bool IsCompleted => true;

    public void Wait()
    {
    }
}
