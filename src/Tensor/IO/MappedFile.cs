using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace NativeReasoner.IO;

/// <summary>
/// A whole file mapped read-only, with checked access to byte ranges of it: the part the container readers
/// (<see cref="SafetensorsFile"/>, the GGUF reader) share. <see cref="Fits"/> is the overflow-safe range test their
/// header validation uses, so an offset or a length from the file can never address memory outside the mapping;
/// <see cref="Span"/> and <see cref="Pointer"/> check again on every access. Errors while opening are built by the
/// caller, so each format reports them with its own exception type.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;
    // The mapping's page-aligned bounds, for ReleasePages: madvise takes whole pages.
    private readonly byte* _mapStart;
    private readonly byte* _mapEnd;
    private bool _disposed;

    public string FilePath { get; }

    /// <summary>File size in bytes.</summary>
    public long Length { get; }

    private MappedFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr)
    {
        FilePath = path;
        Length = length;
        _map = map;
        _view = view;
        _base = basePtr;
        _mapStart = (byte*)((nuint)basePtr & ~(nuint)(Environment.SystemPageSize - 1));
        _mapEnd = (byte*)PageAlignUp((nuint)(basePtr + length));
    }

    /// <summary>
    /// Maps <paramref name="path"/> read-only. A file shorter than <paramref name="minimumLength"/> (at least 1: an
    /// empty file cannot be mapped) is refused with <paramref name="tooShort"/>(length); a file that cannot be opened
    /// or mapped with <paramref name="ioError"/>("cannot open: …" / "cannot map: …", cause).
    /// </summary>
    public static MappedFile Open(string path, long minimumLength, Func<long, Exception> tooShort,
        Func<string, Exception, Exception> ioError)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream fs;
        try
        {
            // Other readers may map the same file concurrently; delete sharing lets a writer rename a new file over
            // this one while the mapping keeps the old contents.
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException
                                      or NotSupportedException)
        {
            throw ioError($"cannot open file: {e.Message}", e);
        }
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* basePtr = null;
        try
        {
            long length = fs.Length;
            if (length < Math.Max(1, minimumLength)) throw tooShort(length);
            map = MemoryMappedFile.CreateFromFile(fs, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            // The view may start before offset 0 because of page alignment; PointerOffset corrects.
            return new MappedFile(path, length, map, view, basePtr + view.PointerOffset);
        }
        catch (Exception e)
        {
            if (basePtr != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            if (map is not null) map.Dispose(); else fs.Dispose();
            if (e is IOException or UnauthorizedAccessException) throw ioError($"cannot map file: {e.Message}", e);
            throw;
        }
    }

    /// <summary>True when [offset, offset + length) lies inside [0, limit), computed without overflow for any
    /// values (negative ones fail).</summary>
    public static bool Fits(long offset, long length, long limit) =>
        offset >= 0 && length >= 0 && offset <= limit && length <= limit - offset;

    /// <summary>Bytes [offset, offset + length) of the file, valid until Dispose (at most 2 GiB).</summary>
    public ReadOnlySpan<byte> Span(long offset, long length)
    {
        if (length > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(length),
                $"{FilePath}: {length} bytes are too many for a span; use Pointer");
        return new ReadOnlySpan<byte>(Pointer(offset, length), (int)length);
    }

    /// <summary>Pointer to byte <paramref name="offset"/> of the file, after checking that
    /// [offset, offset + length) lies inside it; read-only memory, valid until Dispose.</summary>
    public byte* Pointer(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!Fits(offset, length, Length))
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"{FilePath}: bytes [{offset}, {offset + length}) lie outside the {Length}-byte file");
        return _base + offset;
    }

    /// <summary>
    /// Tells the OS the process is done reading bytes [offset, offset + length) for now (Linux madvise DONTNEED on
    /// the pages they span), so they stop counting as resident memory. The mapping is read-only and file-backed:
    /// the pages stay in the page cache and a later read faults them back in, which also makes it harmless that the
    /// first and last page may be shared with neighbouring data. A no-op elsewhere.
    /// </summary>
    public void ReleasePages(long offset, long length)
    {
        byte* data = Pointer(offset, length);
        if (!OperatingSystem.IsLinux() || length == 0) return;
        nuint page = (nuint)Environment.SystemPageSize;
        byte* start = (byte*)((nuint)data & ~(page - 1));
        byte* end = (byte*)PageAlignUp((nuint)(data + length));
        if (start < _mapStart) start = _mapStart;
        if (end > _mapEnd) end = _mapEnd;
        // A failure only means the pages stay resident (e.g. a kernel without madvise): the data is unaffected.
        _ = MAdvise(start, (nuint)(end - start), MAdvDontNeed);
    }

    private const int MAdvDontNeed = 4; // Linux <sys/mman.h>

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int MAdvise(byte* address, nuint length, int advice);

    private static nuint PageAlignUp(nuint address)
    {
        nuint page = (nuint)Environment.SystemPageSize;
        return (address + page - 1) & ~(page - 1);
    }

    /// <summary>Unmaps the file now. Spans and pointers obtained earlier become invalid.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
