// Source: the NCCL 2 API (nccl.h): ncclGetUniqueId, ncclCommInitRank, collectives on a CUDA stream,
// ncclGroupStart/End around ncclSend/ncclRecv, ncclCommSplit, ncclCommAbort.
using System.Runtime.InteropServices;

namespace NativeReasoner.Distributed;

/// <summary>NCCL's opaque id of a communicator to create: 128 bytes, passed by value to ncclCommInitRank.</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
public unsafe struct NcclUniqueId
{
    public const int Bytes = 128;
    public fixed byte Internal[Bytes];
}

/// <summary>libnccl.so.2, loaded at run time and bound through function pointers (nccl.h's ABI).</summary>
internal sealed unsafe class NcclLibrary
{
    /// <summary>Environment variable naming the libnccl to load (else libnccl.so.2).</summary>
    public const string PathVariable = "NR_NCCL_LIBRARY";

    public const int Success = 0;
    public const int SplitNoColor = -1; // NCCL_SPLIT_NOCOLOR

    public readonly string Path;
    public readonly delegate* unmanaged<int*, int> GetVersion;
    public readonly delegate* unmanaged<NcclUniqueId*, int> GetUniqueId;
    public readonly delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int> CommInitRank;
    public readonly delegate* unmanaged<IntPtr, int, int, IntPtr*, IntPtr, int> CommSplit;
    public readonly delegate* unmanaged<IntPtr, int> CommDestroy, CommAbort;
    public readonly delegate* unmanaged<IntPtr, int*, int> CommCount, CommUserRank;
    public readonly delegate* unmanaged<int, IntPtr> GetErrorString;
    public readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> AllReduce;
    public readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> Broadcast;
    public readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int> AllGather;
    public readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> ReduceScatter;
    public readonly delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int> Send, Recv;
    public readonly delegate* unmanaged<int> GroupStart, GroupEnd;

    private NcclLibrary(IntPtr handle, string path)
    {
        Path = path;
        IntPtr Sym(string name) => NativeLibrary.TryGetExport(handle, name, out var p)
            ? p
            : throw new NcclUnavailableException(
                $"{path} has no symbol {name}: NCCL 2.18 or newer is needed (ncclCommSplit)");
        GetVersion = (delegate* unmanaged<int*, int>)Sym("ncclGetVersion");
        GetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Sym("ncclGetUniqueId");
        CommInitRank = (delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int>)Sym("ncclCommInitRank");
        CommSplit = (delegate* unmanaged<IntPtr, int, int, IntPtr*, IntPtr, int>)Sym("ncclCommSplit");
        CommDestroy = (delegate* unmanaged<IntPtr, int>)Sym("ncclCommDestroy");
        CommAbort = (delegate* unmanaged<IntPtr, int>)Sym("ncclCommAbort");
        CommCount = (delegate* unmanaged<IntPtr, int*, int>)Sym("ncclCommCount");
        CommUserRank = (delegate* unmanaged<IntPtr, int*, int>)Sym("ncclCommUserRank");
        GetErrorString = (delegate* unmanaged<int, IntPtr>)Sym("ncclGetErrorString");
        AllReduce = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Sym("ncclAllReduce");
        Broadcast = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Sym("ncclBroadcast");
        AllGather = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int>)Sym("ncclAllGather");
        ReduceScatter = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr,
            int>)Sym("ncclReduceScatter");
        Send = (delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Sym("ncclSend");
        Recv = (delegate* unmanaged<IntPtr, nuint, int, int, IntPtr, IntPtr, int>)Sym("ncclRecv");
        GroupStart = (delegate* unmanaged<int>)Sym("ncclGroupStart");
        GroupEnd = (delegate* unmanaged<int>)Sym("ncclGroupEnd");
    }

    /// <summary>Loads NCCL, or says why it cannot (no library, too old).</summary>
    public static bool TryLoad(out NcclLibrary? library, out string reason)
    {
        library = null;
        var name = Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } named ? named : "libnccl.so.2";
        if (!NativeLibrary.TryLoad(name, out var handle))
        {
            reason = $"{name} could not be loaded (NCCL is installed with the CUDA libraries on GPU machines; " +
                     $"{PathVariable} names another)";
            return false;
        }
        try
        {
            library = new NcclLibrary(handle, name);
            reason = "";
            return true;
        }
        catch (NcclUnavailableException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>NCCL's version as an integer (e.g. 22005 for 2.20.5).</summary>
    public int Version()
    {
        int v = 0;
        Check(GetVersion(&v), "ncclGetVersion");
        return v;
    }

    public void Check(int code, string call)
    {
        if (code == Success) return;
        string text = Marshal.PtrToStringUTF8(GetErrorString(code)) ?? "";
        throw new ProcessGroupException($"{call} failed with NCCL error {code}: {text}");
    }
}

/// <summary>NCCL is not installed or too old.</summary>
public sealed class NcclUnavailableException(string message) : NotSupportedException(message);
