using System.Runtime.InteropServices;

namespace NativeReasoner.Distributed;

/// <summary>
/// A host address for a contiguous tensor that MPI can read or write: the tensor's own memory when it is host
/// memory, else a host copy (filled from the device when <c>copyIn</c>, written back by <see cref="CopyOut"/>).
/// </summary>
internal sealed unsafe class HostView : IDisposable
{
    private readonly Tensor _tensor;
    private readonly bool _copyOut;
    private byte* _staging;
    private readonly long _bytes;

    public IntPtr Pointer { get; }

    private HostView(Tensor tensor, bool copyIn, bool copyOut)
    {
        _tensor = tensor;
        _bytes = tensor.Numel * tensor.DType.SizeOf();
        if (tensor.Device.IsHost)
        {
            Pointer = (IntPtr)tensor.RawPointer;
            return;
        }
        _copyOut = copyOut;
        _staging = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, _bytes));
        if (copyIn && _bytes > 0) tensor.CopyToHost(new Span<byte>(_staging, checked((int)_bytes)));
        Pointer = (IntPtr)_staging;
    }

    public static HostView Of(Tensor tensor, bool copyIn, bool copyOut) => new(tensor, copyIn, copyOut);

    /// <summary>Writes a staged result back into the device tensor (nothing to do for host tensors).</summary>
    public void CopyOut()
    {
        if (_copyOut && _staging != null && _bytes > 0)
            _tensor.CopyFromHost(new ReadOnlySpan<byte>(_staging, checked((int)_bytes)));
    }

    public void Dispose()
    {
        if (_staging == null) return;
        NativeMemory.Free(_staging);
        _staging = null;
    }
}
