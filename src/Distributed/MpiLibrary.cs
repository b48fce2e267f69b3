// Source: the MPI 3.1 standard (nonblocking collectives, MPI_Comm_split) and Open MPI 4.1's mpi.h, where the
// predefined handles are the addresses of exported globals (ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_op_sum).
using System.Runtime.InteropServices;

namespace NativeReasoner.Distributed;

/// <summary>
/// libmpi of Open MPI, loaded at run time and bound through function pointers. Open MPI's handles are pointers
/// (the addresses of its exported predefined objects); MPICH and its derivatives (Intel MPI, MVAPICH) use integer
/// handles with another ABI, so they are recognised and refused with a message rather than called wrongly.
/// The library is opened RTLD_GLOBAL: Open MPI's components (dlopen'ed plugins) resolve symbols of libmpi.
/// </summary>
internal sealed unsafe class MpiLibrary
{
    /// <summary>Environment variable naming the libmpi to load (else libmpi.so.40, then libmpi.so).</summary>
    public const string PathVariable = "NR_MPI_LIBRARY";

    public const int Success = 0;
    public const int ThreadSerialized = 2;
    public const int Undefined = -32766;       // MPI_UNDEFINED in Open MPI
    public static readonly IntPtr InPlace = 1;  // MPI_IN_PLACE in Open MPI

    public readonly string Path;
    public readonly IntPtr CommWorld, ErrorsReturn, Float, Int32, Int64, Byte, OpSum, OpMax, OpMin;

    public readonly delegate* unmanaged<int*, int> Initialized, Finalized;
    public readonly delegate* unmanaged<int*, IntPtr, int, int*, int> InitThread;
    public readonly delegate* unmanaged<int> Finalize;
    public readonly delegate* unmanaged<IntPtr, int*, int> CommRank, CommSize;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> CommSetErrhandler;
    public readonly delegate* unmanaged<IntPtr, int, int, IntPtr*, int> CommSplit;
    public readonly delegate* unmanaged<IntPtr*, int> CommFree;
    public readonly delegate* unmanaged<IntPtr, int, int> Abort;
    public readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;
    public readonly delegate* unmanaged<byte*, int*, int> GetLibraryVersion;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int> Iallreduce;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, IntPtr*, int> Ibcast;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*, int> Iallgather;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int> IreduceScatterBlock;
    public readonly delegate* unmanaged<IntPtr, int*, int*, IntPtr, IntPtr, int*, int*, IntPtr, IntPtr, IntPtr*,
        int> Ialltoallv;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, int, int, IntPtr, IntPtr*, int> Isend, Irecv;
    public readonly delegate* unmanaged<IntPtr, IntPtr*, int> Ibarrier;
    public readonly delegate* unmanaged<IntPtr*, int*, IntPtr, int> Test;

    private static readonly Lazy<MpiLibrary> s_instance = new(() => new MpiLibrary());

    /// <summary>The loaded library; throws <see cref="MpiUnavailableException"/> saying why when there is
    /// none.</summary>
    public static MpiLibrary Instance => s_instance.Value;

    private MpiLibrary()
    {
        var (handle, path) = Open();
        Path = path;
        IntPtr Sym(string name) => NativeLibrary.TryGetExport(handle, name, out var p)
            ? p
            : throw new MpiUnavailableException(
                $"{path} has no symbol {name}: it is not the MPI 3 library NativeReasoner binds");
        if (!NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out CommWorld))
        {
            string kind = NativeLibrary.TryGetExport(handle, "MPIR_Err_return_comm", out _)
                ? "MPICH (or Intel MPI/MVAPICH)" : "not Open MPI";
            throw new MpiUnavailableException(
                $"{path} is {kind}, whose handles are integers with another ABI; NativeReasoner supports " +
                "Open MPI 4.x/5.x (Debian: apt-get install openmpi-bin libopenmpi-dev; or set " +
                $"{PathVariable} to Open MPI's libmpi.so.40) and must be started with Open MPI's mpirun");
        }
        ErrorsReturn = Sym("ompi_mpi_errors_return");
        Float = Sym("ompi_mpi_float");
        Int32 = Sym("ompi_mpi_int32_t");
        Int64 = Sym("ompi_mpi_int64_t");
        Byte = Sym("ompi_mpi_byte");
        OpSum = Sym("ompi_mpi_op_sum");
        OpMax = Sym("ompi_mpi_op_max");
        OpMin = Sym("ompi_mpi_op_min");
        Initialized = (delegate* unmanaged<int*, int>)Sym("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Sym("MPI_Finalized");
        InitThread = (delegate* unmanaged<int*, IntPtr, int, int*, int>)Sym("MPI_Init_thread");
        Finalize = (delegate* unmanaged<int>)Sym("MPI_Finalize");
        CommRank = (delegate* unmanaged<IntPtr, int*, int>)Sym("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<IntPtr, int*, int>)Sym("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<IntPtr, IntPtr, int>)Sym("MPI_Comm_set_errhandler");
        CommSplit = (delegate* unmanaged<IntPtr, int, int, IntPtr*, int>)Sym("MPI_Comm_split");
        CommFree = (delegate* unmanaged<IntPtr*, int>)Sym("MPI_Comm_free");
        Abort = (delegate* unmanaged<IntPtr, int, int>)Sym("MPI_Abort");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Sym("MPI_Error_string");
        GetLibraryVersion = (delegate* unmanaged<byte*, int*, int>)Sym("MPI_Get_library_version");
        Iallreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*,
            int>)Sym("MPI_Iallreduce");
        Ibcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, IntPtr*, int>)Sym("MPI_Ibcast");
        Iallgather = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*,
            int>)Sym("MPI_Iallgather");
        IreduceScatterBlock = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*,
            int>)Sym("MPI_Ireduce_scatter_block");
        Ialltoallv = (delegate* unmanaged<IntPtr, int*, int*, IntPtr, IntPtr, int*, int*, IntPtr, IntPtr, IntPtr*,
            int>)Sym("MPI_Ialltoallv");
        Isend = (delegate* unmanaged<IntPtr, int, IntPtr, int, int, IntPtr, IntPtr*, int>)Sym("MPI_Isend");
        Irecv = (delegate* unmanaged<IntPtr, int, IntPtr, int, int, IntPtr, IntPtr*, int>)Sym("MPI_Irecv");
        Ibarrier = (delegate* unmanaged<IntPtr, IntPtr*, int>)Sym("MPI_Ibarrier");
        Test = (delegate* unmanaged<IntPtr*, int*, IntPtr, int>)Sym("MPI_Test");
    }

    /// <summary>The library's own description (MPI_Get_library_version), first line.</summary>
    public string Version()
    {
        var buffer = stackalloc byte[8192]; // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI, larger elsewhere
        int length = 0;
        if (GetLibraryVersion(buffer, &length) != Success) return "unknown";
        return Marshal.PtrToStringUTF8((IntPtr)buffer, length).Split('\n')[0].Trim().TrimEnd(',');
    }

    /// <summary>Throws a <see cref="ProcessGroupException"/> with MPI's own text for a failed call.</summary>
    public void Check(int code, string call)
    {
        if (code == Success) return;
        var buffer = stackalloc byte[1024];
        int length = 0;
        string text = ErrorString(code, buffer, &length) == Success ? Marshal.PtrToStringUTF8((IntPtr)buffer, length)
            : "";
        throw new ProcessGroupException($"{call} failed with MPI error {code}: {text}");
    }

    private const int RtldNow = 0x002, RtldGlobal = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern IntPtr DlOpen(string file, int mode);

    private static (IntPtr Handle, string Path) Open()
    {
        if (!OperatingSystem.IsLinux())
            throw new MpiUnavailableException(
                "the MPI process group binds Open MPI on Linux; this is another operating system");
        var names = Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } named
            ? [named]
            : new[] { "libmpi.so.40", "libmpi.so", "libmpi.so.12" };
        foreach (var name in names)
        {
            var handle = DlOpen(name, RtldNow | RtldGlobal);
            if (handle != IntPtr.Zero) return (handle, name);
        }
        throw new MpiUnavailableException(
            $"no MPI library could be loaded (tried {string.Join(", ", names)}); install Open MPI " +
            $"(Debian: apt-get install openmpi-bin libopenmpi-dev) or set {PathVariable} to its libmpi.so.40");
    }
}

/// <summary>MPI is not installed, is not Open MPI, or the process was not started in a way MPI accepts.</summary>
public sealed class MpiUnavailableException(string message) : NotSupportedException(message);
