// Source: PyTorch's caching allocators (CPU and CUDACachingAllocator): size-class pools, explicit frees, no finalizers.
using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Memory;

/// <summary>
/// Size-class pool of aligned native blocks. Requests round up to a power of two (≥ 256 bytes) so a
/// training loop that allocates the same shapes every step reuses the same blocks and the hot path makes
/// no system allocation. Blocks above <see cref="MaxPooledBytes"/> bypass the pool. Cached bytes are capped
/// at <see cref="MaxCachedBytes"/>; beyond that a returned block is freed.
/// </summary>
public sealed unsafe class BufferPool : IBufferOwner
{
    public static BufferPool Shared { get; } = new();

    public long MaxPooledBytes { get; init; } = 1L << 30;
    public long MaxCachedBytes { get; init; } = 2L << 30;

    private readonly ConcurrentBag<nint>[] _classes = Enumerable.Range(0, 64).Select(_ => new ConcurrentBag<nint>()).ToArray();
    private long _cachedBytes;
    private long _liveBytes;

    /// <summary>Bytes currently handed out (for leak checks in tests).</summary>
    public long LiveBytes => Interlocked.Read(ref _liveBytes);

    /// <summary>Bytes held in the free lists.</summary>
    public long CachedBytes => Interlocked.Read(ref _cachedBytes);

    public NativeBuffer Rent(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long size = SizeClass(bytes);
        Interlocked.Add(ref _liveBytes, size);
        if (size <= MaxPooledBytes && _classes[BitOperations.Log2((ulong)size)].TryTake(out var p))
        {
            Interlocked.Add(ref _cachedBytes, -size);
            return new NativeBuffer((byte*)p, size, this);
        }
        var fresh = (byte*)NativeMemory.AlignedAlloc((nuint)size, NativeBuffer.Alignment);
        if (fresh == null) throw new OutOfMemoryException($"could not allocate {size} bytes of native memory");
        return new NativeBuffer(fresh, size, this);
    }

    void IBufferOwner.Free(NativeBuffer buffer, byte* pointer, long capacity) => Return(pointer, capacity);

    internal void Return(byte* p, long size)
    {
        Interlocked.Add(ref _liveBytes, -size);
        if (size <= MaxPooledBytes && Interlocked.Add(ref _cachedBytes, size) <= MaxCachedBytes)
        {
            _classes[BitOperations.Log2((ulong)size)].Add((nint)p);
            return;
        }
        if (size <= MaxPooledBytes) Interlocked.Add(ref _cachedBytes, -size);
        NativeMemory.AlignedFree(p);
    }

    /// <summary>Frees every cached block.</summary>
    public void Trim()
    {
        foreach (var bag in _classes)
            while (bag.TryTake(out var p))
                NativeMemory.AlignedFree((void*)p);
        Interlocked.Exchange(ref _cachedBytes, 0);
    }

    private static long SizeClass(long bytes)
    {
        if (bytes <= 256) return 256;
        return (long)BitOperations.RoundUpToPowerOf2((ulong)bytes);
    }
}
