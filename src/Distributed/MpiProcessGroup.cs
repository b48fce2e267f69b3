// Source: the MPI 3.1 standard's nonblocking collectives (MPI_Iallreduce, MPI_Ialltoallv, MPI_Test) over Open MPI.
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace NativeReasoner.Distributed;

/// <summary>
/// A process group on MPI (Open MPI): started by <c>mpirun -np N nr …</c>, the world group reads its rank and size
/// from MPI. Every operation is an MPI nonblocking call whose request <see cref="IWork.Wait"/> polls until it
/// completes or <see cref="Timeout"/> passes. Tensors in host memory are handed to MPI in place; others are copied
/// to a host buffer first and back after completion. MPI is initialised at MPI_THREAD_SERIALIZED and every call
/// holds one lock, so any thread may use the group.
/// </summary>
public sealed unsafe class MpiProcessGroup : IProcessGroup
{
    /// <summary>Environment variable: seconds an operation may take before the job is declared broken.</summary>
    public const string TimeoutVariable = "NR_COLLECTIVE_TIMEOUT_S";

    private static readonly object s_lock = new();
    private static MpiProcessGroup? s_world;
    private readonly MpiLibrary _mpi;
    private IntPtr _comm;
    private readonly bool _isWorld;

    public int Rank { get; }
    public int Size { get; }
    public string Backend => "mpi";
    public TimeSpan Timeout { get; set; } = DefaultTimeout();

    /// <summary>The library MPI reports (e.g. "Open MPI v4.1.4").</summary>
    public string LibraryVersion { get; }

    private MpiProcessGroup(MpiLibrary mpi, IntPtr comm, bool isWorld)
    {
        _mpi = mpi;
        _comm = comm;
        _isWorld = isWorld;
        int rank, size;
        mpi.Check(mpi.CommRank(comm, &rank), "MPI_Comm_rank");
        mpi.Check(mpi.CommSize(comm, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
        LibraryVersion = mpi.Version();
    }

    /// <summary>
    /// The world group of this process (MPI_COMM_WORLD), initialising MPI on first use. Errors come back as codes
    /// (MPI_ERRORS_RETURN), so they surface as exceptions with MPI's text instead of ending the process.
    /// </summary>
    public static MpiProcessGroup World()
    {
        lock (s_lock)
        {
            if (s_world != null) return s_world;
            var mpi = MpiLibrary.Instance;
            int flag = 0;
            mpi.Check(mpi.Finalized(&flag), "MPI_Finalized");
            if (flag != 0)
                throw new MpiUnavailableException("MPI was already finalized in this process; it cannot start again");
            mpi.Check(mpi.Initialized(&flag), "MPI_Initialized");
            if (flag == 0)
            {
                int provided;
                mpi.Check(mpi.InitThread(null, IntPtr.Zero, MpiLibrary.ThreadSerialized, &provided), "MPI_Init_thread");
                if (provided < MpiLibrary.ThreadSerialized)
                    throw new MpiUnavailableException(
                        $"MPI provides thread level {provided}; NativeReasoner needs MPI_THREAD_SERIALIZED (2)");
            }
            mpi.Check(mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
            return s_world = new MpiProcessGroup(mpi, mpi.CommWorld, isWorld: true);
        }
    }

    private static TimeSpan DefaultTimeout() =>
        double.TryParse(Environment.GetEnvironmentVariable(TimeoutVariable),
            System.Globalization.CultureInfo.InvariantCulture,
            out var s) && s > 0 ? TimeSpan.FromSeconds(s) : TimeSpan.FromMinutes(10);

    public IWork AllReduceAsync(Tensor tensor, ReduceOperation op = ReduceOperation.Sum)
    {
        const string name = "AllReduce";
        CollectiveArguments.Contiguous(tensor, name);
        CollectiveArguments.Reducible(tensor, name);
        var buffer = HostView.Of(tensor, copyIn: true, copyOut: true);
        int count = Count(tensor.Numel, name);
        var dtype = DataType(tensor.DType);
        var mpiOp = Op(op);
        return Start(name, r => _mpi.Iallreduce(MpiLibrary.InPlace, buffer.Pointer, count, dtype, mpiOp, _comm, r),
            buffer);
    }

    public IWork BroadcastAsync(Tensor tensor, int root)
    {
        const string name = "Broadcast";
        CollectiveArguments.Contiguous(tensor, name);
        CollectiveArguments.Rank(root, Size, name, "root");
        var buffer = HostView.Of(tensor, copyIn: Rank == root, copyOut: Rank != root);
        int count = Count(Bytes(tensor), name);
        return Start(name, r => _mpi.Ibcast(buffer.Pointer, count, _mpi.Byte, root, _comm, r), buffer);
    }

    public IWork AllGatherAsync(Tensor input, Tensor output)
    {
        const string name = "AllGather";
        CollectiveArguments.Stacked(input, output, Size, name, "input", "output");
        var send = HostView.Of(input, copyIn: true, copyOut: false);
        var recv = HostView.Of(output, copyIn: false, copyOut: true);
        int count = Count(Bytes(input), name);
        return Start(name, r => _mpi.Iallgather(send.Pointer, count, _mpi.Byte, recv.Pointer, count, _mpi.Byte, _comm,
            r),
            send, recv);
    }

    public IWork ReduceScatterAsync(Tensor input, Tensor output, ReduceOperation op = ReduceOperation.Sum)
    {
        const string name = "ReduceScatter";
        CollectiveArguments.Stacked(output, input, Size, name, "output", "input");
        CollectiveArguments.Reducible(input, name);
        var send = HostView.Of(input, copyIn: true, copyOut: false);
        var recv = HostView.Of(output, copyIn: false, copyOut: true);
        int count = Count(output.Numel, name);
        var dtype = DataType(input.DType);
        var mpiOp = Op(op);
        return Start(name, r => _mpi.IreduceScatterBlock(send.Pointer, recv.Pointer, count, dtype, mpiOp, _comm, r),
            send, recv);
    }

    public IWork AllToAllVAsync(Tensor input, ReadOnlySpan<int> sendCounts, Tensor output, ReadOnlySpan<int> recvCounts)
    {
        const string name = "AllToAllV";
        long rowBytes = CollectiveArguments.AllToAllV(input, sendCounts, output, recvCounts, Size);
        // MPI reads the four arrays until the request completes, so they live in native memory until then.
        var arrays = new NativeInts(4 * Size);
        int* sc = arrays.Pointer, sd = sc + Size, rc = sd + Size, rd = rc + Size;
        long sendOffset = 0, recvOffset = 0;
        for (int q = 0; q < Size; q++)
        {
            sc[q] = Count(sendCounts[q] * rowBytes, name);
            sd[q] = Count(sendOffset, name);
            rc[q] = Count(recvCounts[q] * rowBytes, name);
            rd[q] = Count(recvOffset, name);
            sendOffset += sc[q];
            recvOffset += rc[q];
        }
        var send = HostView.Of(input, copyIn: true, copyOut: false);
        var recv = HostView.Of(output, copyIn: false, copyOut: true);
        return Start(name, r => _mpi.Ialltoallv(send.Pointer, sc, sd, _mpi.Byte, recv.Pointer, rc, rd, _mpi.Byte,
            _comm, r),
            send, recv, arrays);
    }

    public IWork SendAsync(Tensor tensor, int destination, int tag = 0)
    {
        const string name = "Send";
        CollectiveArguments.Contiguous(tensor, name);
        CollectiveArguments.Rank(destination, Size, name, "destination");
        var buffer = HostView.Of(tensor, copyIn: true, copyOut: false);
        int count = Count(Bytes(tensor), name);
        return Start($"{name} to rank {destination}",
            r => _mpi.Isend(buffer.Pointer, count, _mpi.Byte, destination, tag, _comm, r), buffer);
    }

    public IWork ReceiveAsync(Tensor tensor, int source, int tag = 0)
    {
        const string name = "Receive";
        CollectiveArguments.Contiguous(tensor, name);
        CollectiveArguments.Rank(source, Size, name, "source");
        var buffer = HostView.Of(tensor, copyIn: false, copyOut: true);
        int count = Count(Bytes(tensor), name);
        return Start($"{name} from rank {source}",
            r => _mpi.Irecv(buffer.Pointer, count, _mpi.Byte, source, tag, _comm, r), buffer);
    }

    public IWork BarrierAsync() => Start("Barrier", r => _mpi.Ibarrier(_comm, r));

    public IProcessGroup? Split(int color, int key)
    {
        IntPtr comm;
        lock (s_lock) _mpi.Check(_mpi.CommSplit(_comm, color < 0 ? MpiLibrary.Undefined : color, key, &comm),
            "MPI_Comm_split");
        // A rank that joined no group got MPI_COMM_NULL (a non-zero address in Open MPI): nothing to wrap.
        if (comm == IntPtr.Zero || color < 0) return null;
        lock (s_lock) _mpi.Check(_mpi.CommSetErrhandler(comm, _mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        return new MpiProcessGroup(_mpi, comm, isWorld: false) { Timeout = Timeout };
    }

    public void Abort(string reason, int exitCode = 1)
    {
        string who = $"rank {Rank} of {Size}: ";
        Console.Error.WriteLine(
            $"{who}aborting the job: {(reason.StartsWith(who, StringComparison.Ordinal) ? reason[who.Length..]
                : reason)}");
        Console.Error.Flush();
        _mpi.Abort(_mpi.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    public void Dispose()
    {
        lock (s_lock)
        {
            if (_comm == IntPtr.Zero) return;
            if (_isWorld)
            {
                int finalized = 0;
                _mpi.Finalized(&finalized);
                if (finalized == 0) _mpi.Finalize();
            }
            else
            {
                var c = _comm;
                _mpi.CommFree(&c);
            }
            _comm = IntPtr.Zero;
        }
    }

    public override string ToString() => $"rank {Rank} of {Size} ({LibraryVersion})";

    private delegate int StartCall(IntPtr* request);

    private MpiWork Start(string name, StartCall call, params IDisposable[] resources)
    {
        if (_comm == IntPtr.Zero)
            throw new ObjectDisposedException(nameof(MpiProcessGroup), $"{name}: the process group was disposed");
        IntPtr request;
        int code;
        lock (s_lock) code = call(&request);
        if (code != MpiLibrary.Success)
        {
            foreach (var r in resources) r.Dispose();
            _mpi.Check(code, $"{name} (rank {Rank} of {Size})");
        }
        return new MpiWork(this, name, request, resources);
    }

    private static int Count(long n, string op) => n <= int.MaxValue
        ? (int)n
        : throw new ProcessGroupException(
            $"{op}: {n} elements or bytes in one call exceed MPI's int count; split the tensor");

    private static long Bytes(Tensor t) => t.Numel * t.DType.SizeOf();

    private IntPtr DataType(DType t) => t switch
    {
        DType.Float32 => _mpi.Float,
        DType.Int32 => _mpi.Int32,
        DType.Int64 => _mpi.Int64,
        _ => throw new ProcessGroupException($"reductions take float32, int32 or int64 tensors, got {t}"),
    };

    private IntPtr Op(ReduceOperation op) => op switch
    {
        ReduceOperation.Sum => _mpi.OpSum,
        ReduceOperation.Max => _mpi.OpMax,
        ReduceOperation.Min => _mpi.OpMin,
        _ => throw new ProcessGroupException($"unknown reduction {op}"),
    };

    /// <summary>One started MPI request: polled with MPI_Test under the lock, then the staged outputs copied
    /// back.</summary>
    private sealed class MpiWork(MpiProcessGroup group, string name, IntPtr request, IDisposable[] resources) : IWork
    {
        private IntPtr _request = request;
        private bool _done;

        public bool IsCompleted
        {
            get
            {
                if (_done) return true;
                int flag = 0;
                var r = _request;
                lock (s_lock) group._mpi.Check(group._mpi.Test(&r, &flag, IntPtr.Zero), $"MPI_Test of {name}");
                _request = r;
                if (flag == 0) return false;
                _done = true;
                foreach (var res in resources)
                {
                    if (res is HostView v) v.CopyOut();
                    res.Dispose();
                }
                return true;
            }
        }

        public void Wait()
        {
            var clock = Stopwatch.StartNew();
            for (int spin = 0; !IsCompleted; spin++)
            {
                if (clock.Elapsed > group.Timeout)
                {
                    // The request stays posted (MPI may still write the buffers), so they are not freed: the caller
                    // is expected to abort the job.
                    throw new CollectiveTimeoutException(
                        $"rank {group.Rank} of {group.Size}: {name} did not complete within " +
                        $"{group.Timeout.TotalSeconds:0.#} s (set by {TimeoutVariable}): another rank died, hangs, " +
                        "or called a different operation");
                }
                // Spin briefly for short collectives, then give the core away (ranks often outnumber cores).
                if (spin < 64) Thread.SpinWait(32);
                else if (spin < 256) Thread.Yield();
                else Thread.Sleep(1);
            }
        }
    }

    /// <summary>Native ints that live until the request using them completes.</summary>
    private sealed class NativeInts(int count) : IDisposable
    {
        public int* Pointer { get; private set; } = (int*)NativeMemory.AllocZeroed((nuint)Math.Max(1, count),
            sizeof(int));

        public void Dispose()
        {
            if (Pointer == null) return;
            NativeMemory.Free(Pointer);
            Pointer = null;
        }
    }
}
