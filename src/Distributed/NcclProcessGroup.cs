// Source: the NCCL 2 API (nccl.h) and its user guide's pattern of one unique id broadcast over MPI, then
// ncclCommInitRank on every rank; all-to-all as grouped ncclSend/ncclRecv.
using NativeReasoner.Kernels.Cuda;

namespace NativeReasoner.Distributed;

/// <summary>
/// A process group on NCCL for tensors on the CUDA device: operations are enqueued on the CUDA backend's stream
/// (so they order with its kernels), and <see cref="IWork.Wait"/> waits for that stream, at most
/// <see cref="Timeout"/> — then the communicator is aborted and a <see cref="CollectiveTimeoutException"/> thrown.
/// The communicator is made from a unique id that rank 0 creates and broadcasts over a bootstrap group (MPI).
/// One GPU per rank: NCCL cannot put two ranks of one communicator on the same GPU.
/// </summary>
public sealed unsafe class NcclProcessGroup : IProcessGroup
{
    // nccl.h's ncclDataType_t and ncclRedOp_t.
    internal const int NcclInt8 = 0, NcclInt32 = 2, NcclInt64 = 4, NcclFloat16 = 6, NcclFloat32 = 7, NcclBfloat16 = 9;
    internal const int NcclSum = 0, NcclMax = 2, NcclMin = 3;

    private readonly NcclLibrary _nccl;
    private readonly CudaBackend _cuda;
    private readonly IProcessGroup _bootstrap;
    private IntPtr _comm;

    public int Rank { get; }
    public int Size { get; }
    public string Backend => "nccl";
    public TimeSpan Timeout { get; set; }

    /// <summary>NCCL's version (e.g. 22005 for 2.20.5).</summary>
    public int Version { get; }

    private NcclProcessGroup(NcclLibrary nccl, CudaBackend cuda, IProcessGroup bootstrap, IntPtr comm)
    {
        _nccl = nccl;
        _cuda = cuda;
        _bootstrap = bootstrap;
        _comm = comm;
        int rank, size;
        nccl.Check(nccl.CommUserRank(comm, &rank), "ncclCommUserRank");
        nccl.Check(nccl.CommCount(comm, &size), "ncclCommCount");
        Rank = rank;
        Size = size;
        Version = nccl.Version();
        Timeout = bootstrap.Timeout;
    }

    /// <summary>
    /// Every rank of <paramref name="bootstrap"/> calls this: rank 0's unique id reaches the others by a broadcast,
    /// then each joins the NCCL communicator with the same rank and size.
    /// </summary>
    public static NcclProcessGroup Create(IProcessGroup bootstrap, CudaBackend cuda)
    {
        if (!NcclLibrary.TryLoad(out var nccl, out var reason)) throw new NcclUnavailableException(reason);
        var id = ExchangeUniqueId(bootstrap, nccl!);
        IntPtr comm;
        nccl!.Check(nccl.CommInitRank(&comm, bootstrap.Size, id, bootstrap.Rank),
            $"ncclCommInitRank (rank {bootstrap.Rank} of {bootstrap.Size})");
        return new NcclProcessGroup(nccl, cuda, bootstrap, comm);
    }

    private static NcclUniqueId ExchangeUniqueId(IProcessGroup bootstrap, NcclLibrary nccl)
    {
        NcclUniqueId id = default;
        if (bootstrap.Rank == 0) nccl.Check(nccl.GetUniqueId(&id), "ncclGetUniqueId");
        var bytes = new Span<byte>(id.Internal, NcclUniqueId.Bytes);
        using var carrier = Tensor.Zeros([NcclUniqueId.Bytes / 4], DType.Int32, Device.Cpu); // [32] int32 = 128 bytes
        carrier.CopyFromHost(bytes);
        bootstrap.Broadcast(carrier, 0);
        carrier.CopyToHost(bytes);
        return id;
    }

    /// <summary>nccl.h's type of a reducible tensor.</summary>
    internal static int DataType(DType t) => t switch
    {
        DType.Float32 => NcclFloat32,
        DType.BFloat16 => NcclBfloat16,
        DType.Float16 => NcclFloat16,
        DType.Int32 => NcclInt32,
        DType.Int64 => NcclInt64,
        _ => throw new ProcessGroupException(
            $"NCCL reductions take float32, bfloat16, float16, int32 or int64 tensors, got {t}"),
    };

    internal static int Op(ReduceOperation op) => op switch
    {
        ReduceOperation.Sum => NcclSum,
        ReduceOperation.Max => NcclMax,
        ReduceOperation.Min => NcclMin,
        _ => throw new ProcessGroupException($"unknown reduction {op}"),
    };

    public IWork AllReduceAsync(Tensor tensor, ReduceOperation op = ReduceOperation.Sum)
    {
        const string name = "AllReduce";
        OnDevice(tensor, name);
        var p = (IntPtr)tensor.RawPointer;
        _nccl.Check(_nccl.AllReduce(p, p, (nuint)tensor.Numel, DataType(tensor.DType), Op(op), _comm, _cuda.Stream),
            "ncclAllReduce");
        return new NcclWork(this, name);
    }

    public IWork BroadcastAsync(Tensor tensor, int root)
    {
        const string name = "Broadcast";
        OnDevice(tensor, name);
        CollectiveArguments.Rank(root, Size, name, "root");
        var p = (IntPtr)tensor.RawPointer;
        _nccl.Check(_nccl.Broadcast(p, p, (nuint)Bytes(tensor), NcclInt8, root, _comm, _cuda.Stream), "ncclBroadcast");
        return new NcclWork(this, name);
    }

    public IWork AllGatherAsync(Tensor input, Tensor output)
    {
        const string name = "AllGather";
        CollectiveArguments.Stacked(input, output, Size, name, "input", "output");
        OnDevice(input, name);
        OnDevice(output, name);
        _nccl.Check(_nccl.AllGather((IntPtr)input.RawPointer, (IntPtr)output.RawPointer, (nuint)Bytes(input), NcclInt8,
            _comm,
            _cuda.Stream), "ncclAllGather");
        return new NcclWork(this, name);
    }

    public IWork ReduceScatterAsync(Tensor input, Tensor output, ReduceOperation op = ReduceOperation.Sum)
    {
        const string name = "ReduceScatter";
        CollectiveArguments.Stacked(output, input, Size, name, "output", "input");
        OnDevice(input, name);
        OnDevice(output, name);
        _nccl.Check(_nccl.ReduceScatter((IntPtr)input.RawPointer, (IntPtr)output.RawPointer, (nuint)output.Numel,
            DataType(input.DType), Op(op), _comm, _cuda.Stream), "ncclReduceScatter");
        return new NcclWork(this, name);
    }

    /// <summary>All-to-all as one NCCL group of sends and receives (empty ones left out), as NCCL's guide does
    /// it.</summary>
    public IWork AllToAllVAsync(Tensor input, ReadOnlySpan<int> sendCounts, Tensor output, ReadOnlySpan<int> recvCounts)
    {
        const string name = "AllToAllV";
        long row = CollectiveArguments.AllToAllV(input, sendCounts, output, recvCounts, Size);
        OnDevice(input, name);
        OnDevice(output, name);
        byte* send = input.RawPointer, recv = output.RawPointer;
        _nccl.Check(_nccl.GroupStart(), "ncclGroupStart");
        int code = NcclLibrary.Success;
        string failed = "";
        for (int q = 0; q < Size && code == NcclLibrary.Success; q++)
        {
            long sendBytes = sendCounts[q] * row, recvBytes = recvCounts[q] * row;
            if (sendBytes > 0 && (code = _nccl.Send((IntPtr)send, (nuint)sendBytes, NcclInt8, q, _comm,
                _cuda.Stream)) != 0) failed = $"ncclSend to {q}";
            if (code == 0 && recvBytes > 0 && (code = _nccl.Recv((IntPtr)recv, (nuint)recvBytes, NcclInt8, q, _comm,
                _cuda.Stream)) != 0) failed = $"ncclRecv from {q}";
            send += sendBytes;
            recv += recvBytes;
        }
        // The group is closed whatever happened inside it, then the first failure is reported.
        int end = _nccl.GroupEnd();
        _nccl.Check(code, failed);
        _nccl.Check(end, "ncclGroupEnd");
        return new NcclWork(this, name);
    }

    public IWork SendAsync(Tensor tensor, int destination, int tag = 0)
    {
        const string name = "Send";
        OnDevice(tensor, name);
        CollectiveArguments.Rank(destination, Size, name, "destination");
        _nccl.Check(_nccl.Send((IntPtr)tensor.RawPointer, (nuint)Bytes(tensor), NcclInt8, destination, _comm,
            _cuda.Stream), "ncclSend");
        return new NcclWork(this, $"{name} to rank {destination}");
    }

    public IWork ReceiveAsync(Tensor tensor, int source, int tag = 0)
    {
        const string name = "Receive";
        OnDevice(tensor, name);
        CollectiveArguments.Rank(source, Size, name, "source");
        _nccl.Check(_nccl.Recv((IntPtr)tensor.RawPointer, (nuint)Bytes(tensor), NcclInt8, source, _comm, _cuda.Stream),
            "ncclRecv");
        return new NcclWork(this, $"{name} from rank {source}");
    }

    /// <summary>NCCL has no barrier: a one-element all-reduce stands in for it.</summary>
    public IWork BarrierAsync()
    {
        var device = _cuda.Kind == Kernels.Cuda.Native.CudaRuntimeKind.Emulator ? CudaDevice.GetEmulator()
            : CudaDevice.Get();
        using var one = Tensor.Zeros([1], DType.Float32, device);
        var work = AllReduceAsync(one);
        work.Wait();
        return work;
    }

    public IProcessGroup? Split(int color, int key)
    {
        IntPtr comm;
        _nccl.Check(_nccl.CommSplit(_comm, color < 0 ? NcclLibrary.SplitNoColor : color, key, &comm, IntPtr.Zero),
            "ncclCommSplit");
        if (color < 0 || comm == IntPtr.Zero) return null;
        return new NcclProcessGroup(_nccl, _cuda, _bootstrap, comm) { Timeout = Timeout };
    }

    public void Abort(string reason, int exitCode = 1)
    {
        if (_comm != IntPtr.Zero) _nccl.CommAbort(_comm);
        _comm = IntPtr.Zero;
        _bootstrap.Abort(reason, exitCode);
    }

    public void Dispose()
    {
        if (_comm == IntPtr.Zero) return;
        _nccl.CommDestroy(_comm);
        _comm = IntPtr.Zero;
    }

    private void OnDevice(Tensor t, string op)
    {
        CollectiveArguments.Contiguous(t, op);
        if (t.Device.Type != DeviceType.Cuda)
            throw new ProcessGroupException(
                $"{op}: NCCL moves tensors on the CUDA device; this one is on {t.Device} " +
                "(use the MPI group for host tensors)");
        if (_comm == IntPtr.Zero)
            throw new ObjectDisposedException(nameof(NcclProcessGroup),
                $"{op}: the communicator was destroyed or aborted");
    }

    private static long Bytes(Tensor t) => t.Numel * t.DType.SizeOf();

    /// <summary>
    /// An operation enqueued on the stream: done when the stream has drained up to now. The wait runs on a worker
    /// thread so that a peer that never arrives ends in a timeout (and an aborted communicator), not a hang.
    /// </summary>
    private sealed class NcclWork(NcclProcessGroup group, string name) : IWork
    {
        private Task? _drained;

        private Task Drained => _drained ??= Task.Run(group._cuda.Synchronize);

        public bool IsCompleted => Drained.IsCompleted;

        public void Wait()
        {
            if (Drained.Wait(group.Timeout)) return;
            if (group._comm != IntPtr.Zero) group._nccl.CommAbort(group._comm);
            group._comm = IntPtr.Zero;
            throw new CollectiveTimeoutException(
                $"rank {group.Rank} of {group.Size}: NCCL {name} did not complete within " +
                $"{group.Timeout.TotalSeconds:0.#} s (the communicator is aborted): another rank died, hangs, " +
                "or called a different operation");
        }
    }
}
