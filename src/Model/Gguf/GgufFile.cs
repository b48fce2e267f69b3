// Source: ggml's GGUF specification (ggml/docs/gguf.md): header, metadata key-values, tensor infos, padding to
// general.alignment, tensor data at aligned offsets relative to the data section.
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// A read-only, memory-mapped GGUF file. <see cref="Open"/> validates every header field, metadata value and tensor
/// info against the file's size before anything is returned: counts and lengths that cannot fit in the bytes left,
/// unknown value or tensor types, dimensions that are not whole blocks, offsets that are misaligned, overlap or run
/// past the end are a <see cref="GgufException"/> naming the field. Tensor bytes stay in the mapping
/// (<see cref="GetPointer"/>, <see cref="GetBytes"/>) and are valid until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Dictionary<string, GgufTensorInfo> _byName;
    private byte* _base;
    private readonly byte* _mapStart;
    private readonly byte* _mapEnd;
    private bool _disposed;

    public string FilePath { get; }
    public long Length { get; }
    public uint Version { get; }
    public GgufMetadata Metadata { get; }

    /// <summary>Tensors in the order of their infos in the file.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>general.alignment, or 32 when absent.</summary>
    public uint Alignment { get; }

    /// <summary>Absolute file offset of the data section (tensor offsets are relative to it).</summary>
    public long DataStart { get; }

    private GgufFile(string path, long length, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr,
        GgufHeaderReader.Parsed parsed)
    {
        FilePath = path;
        Length = length;
        _map = map;
        _view = view;
        _base = basePtr;
        _mapStart = (byte*)((nuint)basePtr & ~(nuint)(Environment.SystemPageSize - 1));
        _mapEnd = (byte*)PageAlignUp((nuint)(basePtr + length));
        Version = parsed.Version;
        Metadata = parsed.Metadata;
        Tensors = parsed.Tensors;
        Alignment = parsed.Alignment;
        DataStart = parsed.DataStart;
        _byName = parsed.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Maps <paramref name="path"/> read-only and validates it.</summary>
    /// <exception cref="GgufException">The file is missing, unreadable or malformed.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException
                                      or NotSupportedException)
        {
            throw new GgufException(path, "file", $"cannot open: {e.Message}", e);
        }
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* basePtr = null;
        try
        {
            long length = fs.Length;
            // The smallest GGUF: magic, version, tensor count and key-value count.
            if (length < 24)
            {
                fs.Dispose();
                throw new GgufException(path, "header", $"file is {length} bytes, shorter than the 24-byte header " +
                    "(magic, version, tensor_count, metadata_kv_count)");
            }
            map = MemoryMappedFile.CreateFromFile(fs, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            byte* filePtr = basePtr + view.PointerOffset;
            var parsed = GgufHeaderReader.Parse(path, filePtr, length);
            return new GgufFile(path, length, map, view, filePtr, parsed);
        }
        catch (Exception e)
        {
            if (basePtr != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            if (map is not null) map.Dispose(); else fs.Dispose();
            if (e is GgufException) throw;
            if (e is IOException or UnauthorizedAccessException)
                throw new GgufException(path, "file", $"cannot map: {e.Message}", e);
            throw;
        }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public GgufTensorInfo GetTensor(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out var t)) return t;
        throw new GgufException(FilePath, $"tensor '{name}'", $"missing (the file holds {Tensors.Count} tensors)");
    }

    /// <summary>Pointer to the tensor's first byte in the mapping, valid until Dispose; read-only memory.</summary>
    public byte* GetPointer(string name) => Base + GetTensor(name).DataOffset;

    /// <summary>The tensor's stored bytes (at most 2 GiB; use <see cref="GetPointer"/> beyond).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var t = GetTensor(name);
        if (t.ByteLength > int.MaxValue)
            throw new GgufException(FilePath, $"tensor '{name}'", $"is {t.ByteLength} bytes, too large for a span");
        return new ReadOnlySpan<byte>(Base + t.DataOffset, (int)t.ByteLength);
    }

    /// <summary>
    /// Drops the mapped pages of bytes [offset, offset + length) of a tensor from the process's resident memory
    /// (Linux madvise DONTNEED; the file-backed pages are read again if touched), so a loader that copied them out
    /// does not hold the file and the copy at once.
    /// </summary>
    public void ReleasePages(string name, long offset, long length)
    {
        var t = GetTensor(name);
        if (offset < 0 || length < 0 || offset > t.ByteLength - length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"{FilePath}: bytes [{offset}, {offset + length}) lie outside tensor '{name}' ({t.ByteLength} bytes)");
        if (!OperatingSystem.IsLinux() || length == 0) return;
        byte* data = Base + t.DataOffset + offset;
        nuint page = (nuint)Environment.SystemPageSize;
        byte* start = (byte*)((nuint)data & ~(page - 1));
        byte* end = (byte*)PageAlignUp((nuint)(data + length));
        if (start < _mapStart) start = _mapStart;
        if (end > _mapEnd) end = _mapEnd;
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

    private byte* Base
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _base;
        }
    }

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
