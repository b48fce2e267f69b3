using NativeReasoner.Kernels.Memory;

namespace NativeReasoner.Kernels.Cuda;

/// <summary>
/// Device memory with a caching allocator, as PyTorch's: sizes are rounded to a class (512-byte steps below
/// 1 MiB, 2 MiB steps above), freed blocks go back to the free list of their class instead of cuMemFree, and a
/// later request of that class reuses them. Every launch and copy runs on the backend's one stream, so a block
/// freed after its last use was queued can be handed out at once: anything that touches it later is queued
/// behind that use. When cuMemAlloc runs out of memory the cache is emptied and the allocation retried.
/// Host ↔ device copies go through pinned staging buffers (page-locked host memory, so the DMA runs at full
/// speed and asynchronously), in chunks.
/// </summary>
public sealed unsafe class CudaMemory : IDeviceMemory, IBufferOwner
{
    private const long SmallLimit = 1L << 20;
    private const long SmallStep = 512;
    private const long LargeStep = 2L << 20;
    private const int StagingBytes = 4 << 20;

    private readonly CudaBackend _backend;
    private readonly object _lock = new();
    private readonly Dictionary<long, Stack<ulong>> _free = new();
    private readonly HashSet<ulong> _live = new();
    private byte* _staging;

    // Small uploads (descriptor tables, shapes) go through a ring of pinned slots without waiting for the stream:
    // the copy is queued like a launch and an event marks when its slot may be refilled.
    private const int UploadSlots = 16;
    private const int UploadSlotBytes = 64 * 1024;
    private byte* _uploadRing;
    private readonly IntPtr[] _uploadEvents = new IntPtr[UploadSlots];
    private int _uploadNext;

    internal CudaMemory(CudaBackend backend) => _backend = backend;

    public bool IsHost => false;

    /// <summary>Bytes in blocks handed out now.</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>Bytes in freed blocks kept for reuse.</summary>
    public long CachedBytes { get; private set; }

    /// <summary>Blocks handed out now (leak checks).</summary>
    public int LiveAllocations
    {
        get { lock (_lock) return _live.Count; }
    }

    /// <summary>cuMemAlloc calls so far (the cache is working when this stops growing).</summary>
    public long DeviceAllocations { get; private set; }

    /// <summary>The size class a request of <paramref name="bytes"/> is served from.</summary>
    public static long SizeClass(long bytes)
    {
        if (bytes <= 0) return SmallStep;
        if (bytes <= SmallLimit) return (bytes + SmallStep - 1) / SmallStep * SmallStep;
        return (bytes + LargeStep - 1) / LargeStep * LargeStep;
    }

    public NativeBuffer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long size = SizeClass(bytes);
        ulong p;
        lock (_lock)
        {
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                p = stack.Pop();
                CachedBytes -= size;
            }
            else
            {
                p = DeviceAlloc(size);
            }
            _live.Add(p);
            AllocatedBytes += size;
        }
        return new NativeBuffer((byte*)p, size, this);
    }

    private ulong DeviceAlloc(long size)
    {
        _backend.MakeCurrent();
        ulong p;
        int r = _backend.Api.cuMemAlloc_v2(&p, (nuint)size);
        if (r == Native.CudaConstants.ErrorOutOfMemory && CachedBytes > 0)
        {
            EmptyCacheLocked();
            r = _backend.Api.cuMemAlloc_v2(&p, (nuint)size);
        }
        if (r != 0)
            throw new CudaException($"cuMemAlloc_v2({size} bytes; {AllocatedBytes} in use, {CachedBytes} cached)", r, _backend.Api.Describe(r));
        DeviceAllocations++;
        return p;
    }

    public void Free(NativeBuffer buffer, byte* pointer, long capacity)
    {
        lock (_lock)
        {
            if (!_live.Remove((ulong)pointer)) return; // released after ReleaseAll (backend teardown)
            AllocatedBytes -= capacity;
            if (!_free.TryGetValue(capacity, out var stack)) _free[capacity] = stack = new Stack<ulong>();
            stack.Push((ulong)pointer);
            CachedBytes += capacity;
        }
    }

    /// <summary>Returns every cached (free) block to the driver.</summary>
    public void EmptyCache()
    {
        lock (_lock) EmptyCacheLocked();
    }

    private void EmptyCacheLocked()
    {
        _backend.MakeCurrent();
        // Blocks still in use by queued work must not go back to the driver mid-kernel.
        _backend.Check(_backend.Api.cuStreamSynchronize(_backend.Stream));
        foreach (var stack in _free.Values)
            while (stack.Count > 0) _backend.Check(_backend.Api.cuMemFree_v2(stack.Pop()));
        CachedBytes = 0;
    }

    /// <summary>Backend teardown: frees everything, live or cached.</summary>
    internal void ReleaseAll()
    {
        lock (_lock)
        {
            EmptyCacheLocked();
            foreach (var p in _live) _backend.Api.cuMemFree_v2(p);
            _live.Clear();
            AllocatedBytes = 0;
            if (_staging != null)
            {
                _backend.Api.cuMemFreeHost(_staging);
                _staging = null;
            }
            if (_uploadRing != null)
            {
                _backend.Api.cuMemFreeHost(_uploadRing);
                _uploadRing = null;
                for (int i = 0; i < UploadSlots; i++)
                    if (_uploadEvents[i] != IntPtr.Zero) _backend.Api.cuEventDestroy_v2(_uploadEvents[i]);
                Array.Clear(_uploadEvents);
            }
        }
    }

    /// <summary>The pinned staging buffer (allocated once, on first copy). Call under <see cref="_lock"/>.</summary>
    private byte* Staging()
    {
        if (_staging != null) return _staging;
        void* p;
        _backend.Check(_backend.Api.cuMemAllocHost_v2(&p, StagingBytes));
        _staging = (byte*)p;
        return _staging;
    }

    public void CopyFromHost(void* hostSource, byte* destination, long bytes)
    {
        if (bytes <= 0) return;
        lock (_lock)
        {
            _backend.MakeCurrent();
            byte* staging = Staging();
            for (long done = 0; done < bytes; done += StagingBytes)
            {
                long n = Math.Min(StagingBytes, bytes - done);
                // The previous chunk's DMA must have left the staging buffer before it is overwritten.
                _backend.Check(_backend.Api.cuStreamSynchronize(_backend.Stream));
                Buffer.MemoryCopy((byte*)hostSource + done, staging, StagingBytes, n);
                _backend.Check(_backend.Api.cuMemcpyHtoDAsync_v2((ulong)(destination + done), staging, (nuint)n, _backend.Stream));
            }
            _backend.Check(_backend.Api.cuStreamSynchronize(_backend.Stream));
        }
    }

    /// <summary>
    /// Host → device without waiting: the bytes are copied into a pinned ring slot now, the DMA is queued on the
    /// stream (ahead of the launches that read it), and the host returns at once. Only a slot still in flight from
    /// 16 uploads ago is waited for. Larger uploads fall back to <see cref="CopyFromHost"/>.
    /// </summary>
    public void CopyFromHostAsync(void* hostSource, byte* destination, long bytes)
    {
        if (bytes <= 0) return;
        if (bytes > UploadSlotBytes)
        {
            CopyFromHost(hostSource, destination, bytes);
            return;
        }
        lock (_lock)
        {
            _backend.MakeCurrent();
            if (_uploadRing == null)
            {
                void* p;
                _backend.Check(_backend.Api.cuMemAllocHost_v2(&p, (nuint)(UploadSlots * UploadSlotBytes)));
                _uploadRing = (byte*)p;
                for (int i = 0; i < UploadSlots; i++)
                {
                    IntPtr e;
                    _backend.Check(_backend.Api.cuEventCreate(&e, Native.CudaConstants.EventDisableTiming));
                    _uploadEvents[i] = e;
                }
            }
            int slot = _uploadNext;
            _uploadNext = (slot + 1) % UploadSlots;
            // The event recorded after this slot's previous copy: once it completed, the DMA has read the slot.
            _backend.Check(_backend.Api.cuEventSynchronize(_uploadEvents[slot]));
            byte* staging = _uploadRing + (long)slot * UploadSlotBytes;
            Buffer.MemoryCopy(hostSource, staging, UploadSlotBytes, bytes);
            _backend.Check(_backend.Api.cuMemcpyHtoDAsync_v2((ulong)destination, staging, (nuint)bytes, _backend.Stream));
            _backend.Check(_backend.Api.cuEventRecord(_uploadEvents[slot], _backend.Stream));
        }
    }

    public void CopyToHost(byte* source, void* hostDestination, long bytes)
    {
        if (bytes <= 0) return;
        lock (_lock)
        {
            _backend.MakeCurrent();
            byte* staging = Staging();
            for (long done = 0; done < bytes; done += StagingBytes)
            {
                long n = Math.Min(StagingBytes, bytes - done);
                _backend.Check(_backend.Api.cuMemcpyDtoHAsync_v2(staging, (ulong)(source + done), (nuint)n, _backend.Stream));
                _backend.Check(_backend.Api.cuStreamSynchronize(_backend.Stream));
                Buffer.MemoryCopy(staging, (byte*)hostDestination + done, n, n);
            }
        }
    }

    public void Copy(byte* source, byte* destination, long bytes)
    {
        if (bytes <= 0) return;
        _backend.MakeCurrent();
        _backend.Check(_backend.Api.cuMemcpyDtoDAsync_v2((ulong)destination, (ulong)source, (nuint)bytes, _backend.Stream));
    }

    public void Clear(byte* destination, long bytes)
    {
        if (bytes <= 0) return;
        _backend.MakeCurrent();
        _backend.Check(_backend.Api.cuMemsetD8Async((ulong)destination, 0, (nuint)bytes, _backend.Stream));
    }

    /// <summary>Free and total device memory as the driver reports it.</summary>
    public (long Free, long Total) DeviceMemoryInfo()
    {
        _backend.MakeCurrent();
        nuint free, total;
        _backend.Check(_backend.Api.cuMemGetInfo_v2(&free, &total));
        return ((long)free, (long)total);
    }

}
