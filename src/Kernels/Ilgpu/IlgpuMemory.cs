using ILGPU;
using ILGPU.Runtime;
using NativeReasoner.Kernels.Memory;

namespace NativeReasoner.Kernels.Ilgpu;

/// <summary>
/// Device memory of an ILGPU accelerator. Each allocation is one <c>MemoryBuffer1D&lt;byte&gt;</c>; its
/// <c>NativePtr</c> is the address handed out (so tensors do pointer arithmetic on it as on any backend), and
/// the kernels map an address back to (buffer, byte offset) through <see cref="Find"/>.
/// </summary>
public sealed unsafe class IlgpuMemory : IDeviceMemory, IBufferOwner
{
    /// <summary>Allocations are rounded up to this many bytes (keeps every base 64-byte aligned and non-empty).</summary>
    private const long Granule = 256;

    private readonly IlgpuBackend _backend;

    // Base address → buffer, sorted so that an interior address finds its allocation by binary search.
    private readonly SortedList<long, MemoryBuffer1D<byte, Stride1D.Dense>> _buffers = new();
    private readonly object _mapLock = new();

    internal IlgpuMemory(IlgpuBackend backend) => _backend = backend;

    public bool IsHost => false;

    /// <summary>Live allocations (for leak checks in tests).</summary>
    public int LiveAllocations
    {
        get { lock (_mapLock) return _buffers.Count; }
    }

    public NativeBuffer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long rounded = Math.Max(Granule, (bytes + Granule - 1) / Granule * Granule);
        MemoryBuffer1D<byte, Stride1D.Dense> buffer;
        lock (_backend.Sync) buffer = _backend.Accelerator.Allocate1D<byte>(rounded);
        long address = buffer.NativePtr.ToInt64();
        lock (_mapLock) _buffers.Add(address, buffer);
        return new NativeBuffer((byte*)address, rounded, this, buffer);
    }

    public void Free(NativeBuffer buffer, byte* pointer, long capacity)
    {
        MemoryBuffer1D<byte, Stride1D.Dense>? b;
        lock (_mapLock)
        {
            if (!_buffers.Remove((long)pointer, out b)) return; // already gone with the backend
        }
        // Kernels still queued on the stream may read the buffer: finish them before it goes.
        lock (_backend.Sync)
        {
            _backend.Accelerator.Synchronize();
            b.Dispose();
        }
    }

    /// <summary>Frees everything still allocated (backend teardown).</summary>
    internal void ReleaseAll()
    {
        lock (_mapLock)
        {
            foreach (var b in _buffers.Values) b.Dispose();
            _buffers.Clear();
        }
    }

    /// <summary>The allocation holding <paramref name="address"/> and the byte offset of the address in it.</summary>
    internal (MemoryBuffer1D<byte, Stride1D.Dense> Buffer, long Offset) Find(void* address)
    {
        long a = (long)address;
        lock (_mapLock)
        {
            var keys = _buffers.Keys;
            int lo = 0, hi = keys.Count - 1, found = -1;
            // Last base ≤ a.
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                if (keys[mid] <= a) { found = mid; lo = mid + 1; }
                else hi = mid - 1;
            }
            if (found >= 0)
            {
                var b = _buffers.Values[found];
                long off = a - keys[found];
                if (off < b.Length) return (b, off);
            }
        }
        throw new ArgumentException($"address 0x{a:X} is not in ILGPU device memory (was the tensor allocated on another device?)");
    }

    /// <summary>Bytes from <paramref name="address"/> to the end of its allocation, as a view.</summary>
    internal ArrayView<byte> Bytes(void* address)
    {
        var (b, off) = Find(address);
        return b.View.SubView(off, b.Length - off);
    }

    /// <summary>A typed view starting at <paramref name="address"/> and running to the end of its allocation.</summary>
    internal ArrayView<T> View<T>(void* address) where T : unmanaged
    {
        var bytes = Bytes(address);
        long usable = bytes.Length / sizeof(T) * sizeof(T);
        return bytes.SubView(0, usable).Cast<T>();
    }

    public void CopyFromHost(void* hostSource, byte* destination, long bytes)
    {
        if (bytes == 0) return;
        var view = Bytes(destination).SubView(0, bytes);
        lock (_backend.Sync)
        {
            view.CopyFromCPU(_backend.Accelerator.DefaultStream, ref *(byte*)hostSource, bytes);
            _backend.Accelerator.DefaultStream.Synchronize();
        }
    }

    public void CopyToHost(byte* source, void* hostDestination, long bytes)
    {
        if (bytes == 0) return;
        var view = Bytes(source).SubView(0, bytes);
        lock (_backend.Sync)
        {
            // Host reads follow: everything queued before must have finished.
            _backend.Accelerator.DefaultStream.Synchronize();
            view.CopyToCPU(_backend.Accelerator.DefaultStream, ref *(byte*)hostDestination, bytes);
            _backend.Accelerator.DefaultStream.Synchronize();
        }
    }

    public void Copy(byte* source, byte* destination, long bytes)
    {
        if (bytes == 0) return;
        var src = Bytes(source).SubView(0, bytes);
        var dst = Bytes(destination).SubView(0, bytes);
        lock (_backend.Sync) src.CopyTo(_backend.Accelerator.DefaultStream, dst);
    }

    public void Clear(byte* destination, long bytes)
    {
        if (bytes == 0) return;
        var view = Bytes(destination).SubView(0, bytes);
        lock (_backend.Sync) view.MemSetToZero(_backend.Accelerator.DefaultStream);
    }
}
