// Source: PyTorch's caching allocators (CPU and CUDACachingAllocator): size-class pools, explicit frees, no finalizers.
namespace NativeReasoner.Kernels.Memory;

/// <summary>
/// How a backend allocates and moves its memory. Pointers are the backend's own addresses (host
/// addresses for the CPU backends, device addresses for GPU backends): the kernels of the same backend
/// read them, host code never dereferences them unless <see cref="IsHost"/> is true.
/// </summary>
public unsafe interface IDeviceMemory
{
    /// <summary>True when pointers of this memory can be read and written by host code directly.</summary>
    bool IsHost { get; }

    /// <summary>A block of at least <paramref name="bytes"/> bytes, 64-byte aligned, reference count 1.</summary>
    NativeBuffer Allocate(long bytes);

    /// <summary>Host → this memory.</summary>
    void CopyFromHost(void* hostSource, byte* destination, long bytes);

    /// <summary>This memory → host.</summary>
    void CopyToHost(byte* source, void* hostDestination, long bytes);

    /// <summary>Within this memory (regions do not overlap).</summary>
    void Copy(byte* source, byte* destination, long bytes);

    /// <summary>Sets bytes to zero.</summary>
    void Clear(byte* destination, long bytes);
}

/// <summary>Ordinary host memory from the shared <see cref="BufferPool"/>.</summary>
public sealed unsafe class HostMemory : IDeviceMemory
{
    public static HostMemory Instance { get; } = new();

    public bool IsHost => true;

    public NativeBuffer Allocate(long bytes) => BufferPool.Shared.Rent(bytes);

    public void CopyFromHost(void* hostSource, byte* destination, long bytes) =>
        Buffer.MemoryCopy(hostSource, destination, bytes, bytes);

    public void CopyToHost(byte* source, void* hostDestination, long bytes) =>
        Buffer.MemoryCopy(source, hostDestination, bytes, bytes);

    public void Copy(byte* source, byte* destination, long bytes)
    {
        // Overlapping ranges keep memmove's semantics on one thread (chunks would read what another already wrote).
        bool overlap = source < destination + bytes && destination < source + bytes;
        if (bytes < 2 * ParallelMinBytes || Cpu.CpuParallel.Threads == 1 || overlap)
        {
            Buffer.MemoryCopy(source, destination, bytes, bytes);
            return;
        }
        var st = new ByteRangeJob { Source = source, Destination = destination };
        Cpu.CpuParallel.For(bytes, ParallelMinBytes, &CopyBody, &st);
    }

    public void Clear(byte* destination, long bytes)
    {
        if (bytes < 2 * ParallelMinBytes || Cpu.CpuParallel.Threads == 1)
        {
            System.Runtime.InteropServices.NativeMemory.Clear(destination, (nuint)bytes);
            return;
        }
        var st = new ByteRangeJob { Destination = destination };
        Cpu.CpuParallel.For(bytes, ParallelMinBytes, &ClearBody, &st);
    }

    // Zeroing and copying are memory-bound, but one core does not saturate the memory system: a tensor of a
    // megabyte or more (the zero-filled gradients of narrow/slice backward, the first copy of a weight gradient)
    // cleared on one thread left the other core idle (memset was 2 % of the main thread's samples in a training step).
    private const long ParallelMinBytes = 128 << 10;

    private struct ByteRangeJob
    {
        public byte* Source, Destination;
    }

    private static void CopyBody(void* state, long start, long end)
    {
        var st = (ByteRangeJob*)state;
        Buffer.MemoryCopy(st->Source + start, st->Destination + start, end - start, end - start);
    }

    private static void ClearBody(void* state, long start, long end) =>
        System.Runtime.InteropServices.NativeMemory.Clear(((ByteRangeJob*)state)->Destination + start, (nuint)(end - start));
}
