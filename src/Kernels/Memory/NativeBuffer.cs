// Source: PyTorch's caching allocators (CPU and CUDACachingAllocator): size-class pools, explicit frees, no finalizers.
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Memory;

/// <summary>Gives a released block back to whoever allocated it (a pool, a device allocator).</summary>
public unsafe interface IBufferOwner
{
    void Free(NativeBuffer buffer, byte* pointer, long capacity);
}

/// <summary>
/// A 64-byte aligned block of native memory with a reference count. It goes back to its
/// <see cref="BufferPool"/> when the last owner releases it. There is deliberately no finalizer:
/// memory is freed by <see cref="Release"/> (tensor disposal, scopes), never by the GC.
/// </summary>
public sealed unsafe class NativeBuffer
{
    public const int Alignment = 64;

    private int _refCount;
    private readonly IBufferOwner? _owner;
    private bool _countedUnpooled;
    private static long s_unpooledLiveBytes;

    /// <summary>
    /// Bytes of <see cref="AllocateUnpooled"/> blocks not yet released (with <see cref="BufferPool.LiveBytes"/>,
    /// the native allocation counters the leak tests hold flat).
    /// </summary>
    public static long UnpooledLiveBytes => Interlocked.Read(ref s_unpooledLiveBytes);

    /// <summary>Start of the block; null after the block has been returned.</summary>
    public byte* Pointer { get; private set; }

    /// <summary>Usable bytes (the pool's size class, at least what was asked).</summary>
    public long Capacity { get; }

    /// <param name="pointer">Start of the block, in the owner's address space (host or device).</param>
    /// <param name="capacity">Usable bytes.</param>
    /// <param name="owner">Frees the block when the last reference goes; null = NativeMemory.AlignedFree.</param>
    /// <param name="handle">The owner's own object for the block (e.g. a device buffer), if any.</param>
    public NativeBuffer(byte* pointer, long capacity, IBufferOwner? owner, object? handle = null)
    {
        Pointer = pointer;
        Capacity = capacity;
        _owner = owner;
        Handle = handle;
        _refCount = 1;
    }

    /// <summary>The owner's object for this block (a device allocation), or null for plain host memory.</summary>
    public object? Handle { get; }

    /// <summary>Allocates an unpooled block (freed when released).</summary>
    public static NativeBuffer AllocateUnpooled(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), Alignment);
        if (p == null) throw new OutOfMemoryException($"could not allocate {bytes} bytes of native memory");
        Interlocked.Add(ref s_unpooledLiveBytes, bytes);
        return new NativeBuffer(p, bytes, null) { _countedUnpooled = true };
    }

    public int RefCount => Volatile.Read(ref _refCount);

    public bool IsAlive => Pointer != null;

    /// <summary>Adds an owner.</summary>
    public void Retain()
    {
        if (Interlocked.Increment(ref _refCount) <= 1)
            throw new ObjectDisposedException(nameof(NativeBuffer), "buffer was already released");
    }

    /// <summary>Adds an owner and returns this buffer (for handing to a new view).</summary>
    public NativeBuffer RetainSelf()
    {
        Retain();
        return this;
    }

    /// <summary>Removes an owner; the last one returns the block to the pool (or frees it).</summary>
    public void Release()
    {
        int left = Interlocked.Decrement(ref _refCount);
        if (left > 0) return;
        if (left < 0) throw new InvalidOperationException("NativeBuffer released more times than retained");
        var p = Pointer;
        Pointer = null;
        if (_owner != null) _owner.Free(this, p, Capacity);
        else NativeMemory.AlignedFree(p);
        if (_countedUnpooled) Interlocked.Add(ref s_unpooledLiveBytes, -Capacity);
    }

    /// <summary>The block as bytes (host memory only).</summary>
    public Span<byte> AsBytes() => new(Pointer, checked((int)Capacity));
}
