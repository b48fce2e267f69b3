// Source: ggml's GGUF specification (ggml/docs/gguf.md): header, metadata key-values, tensor infos, padding to
// general.alignment, tensor data at aligned offsets relative to the data section.
using NativeReasoner.IO;

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
    private readonly MappedFile _file;
    private readonly Dictionary<string, GgufTensorInfo> _byName;

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

    private GgufFile(MappedFile file, GgufHeaderReader.Parsed parsed)
    {
        FilePath = file.FilePath;
        Length = file.Length;
        _file = file;
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
        // The smallest GGUF: magic, version, tensor count and key-value count.
        var file = MappedFile.Open(path, 24,
            length => new GgufException(path, "header", $"file is {length} bytes, shorter than the 24-byte header " +
                "(magic, version, tensor_count, metadata_kv_count)"),
            (message, e) => new GgufException(path, "file", message, e));
        try
        {
            var parsed = GgufHeaderReader.Parse(path, file.Pointer(0, file.Length), file.Length);
            return new GgufFile(file, parsed);
        }
        catch
        {
            file.Dispose();
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
    public byte* GetPointer(string name)
    {
        var t = GetTensor(name);
        return _file.Pointer(t.DataOffset, t.ByteLength);
    }

    /// <summary>The tensor's stored bytes (at most 2 GiB; use <see cref="GetPointer"/> beyond).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var t = GetTensor(name);
        if (t.ByteLength > int.MaxValue)
            throw new GgufException(FilePath, $"tensor '{name}'", $"is {t.ByteLength} bytes, too large for a span");
        return _file.Span(t.DataOffset, t.ByteLength);
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
        _file.ReleasePages(t.DataOffset + offset, length);
    }

    public void Dispose() => _file.Dispose();
}
