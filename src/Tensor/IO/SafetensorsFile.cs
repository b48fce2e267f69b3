using System.Buffers.Binary;
using NativeReasoner.Kernels;

namespace NativeReasoner.IO;

/// <summary>
/// A read-only, memory-mapped safetensors file. <see cref="Open"/> validates the whole header
/// against the file size, so every entry's bytes are known to lie inside the mapping. Tensor data
/// is never copied unless asked for (<see cref="CopyTo"/>, <see cref="ReadFloat32(string)"/>);
/// spans and pointers point into the mapping and are valid only until <see cref="Dispose"/>.
/// Reads are safe from multiple threads; Dispose must not race with them.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MappedFile _file;
    private readonly Dictionary<string, SafetensorsEntry> _byName;

    /// <summary>The path the file was opened with.</summary>
    public string FilePath { get; }

    /// <summary>Total file size in bytes.</summary>
    public long Length { get; }

    /// <summary>Contents of the header's <c>__metadata__</c> object (empty if absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors, in the order their data appears in the file.</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }

    private SafetensorsFile(MappedFile file, SafetensorsHeader.Parsed parsed)
    {
        FilePath = file.FilePath;
        Length = file.Length;
        _file = file;
        Metadata = parsed.Metadata;
        Entries = parsed.Entries;
        _byName = new Dictionary<string, SafetensorsEntry>(parsed.Entries.Length, StringComparer.Ordinal);
        foreach (SafetensorsEntry e in parsed.Entries) _byName.Add(e.Name, e);
    }

    /// <summary>Maps <paramref name="path"/> read-only and validates its header.</summary>
    /// <exception cref="SafetensorsException">The file is missing, unreadable or malformed.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        // Under 8 bytes cannot hold the length prefix (and an empty file cannot be mapped at all).
        var file = MappedFile.Open(path, 8,
            length => new SafetensorsException(path, null, $"file is {length} bytes, too short for the 8-byte header length"),
            (message, e) => new SafetensorsException(path, null, message, e));
        try
        {
            long length = file.Length;
            ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(0, 8));
            if (headerLen == 0)
                throw new SafetensorsException(path, null, "header length is 0");
            // Compare as unsigned first so 2^63 and above cannot turn negative as a long.
            if (headerLen > SafetensorsFormat.MaxHeaderBytes)
                throw new SafetensorsException(path, null,
                    $"header length {headerLen} exceeds the {SafetensorsFormat.MaxHeaderBytes}-byte limit");
            if (headerLen > (ulong)(length - 8))
                throw new SafetensorsException(path, null,
                    $"header length {headerLen} is larger than the {length - 8} bytes after the length prefix (file truncated?)");

            long dataStart = 8 + (long)headerLen;
            // Copy the header out of the mapping: JsonDocument keeps references into its input and
            // the copy is at most MaxHeaderBytes.
            byte[] json = file.Span(8, (long)headerLen).ToArray();
            SafetensorsHeader.Parsed parsed = SafetensorsHeader.Parse(path, json, dataStart, length - dataStart);
            return new SafetensorsFile(file, parsed);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Whether the file holds a tensor of this name.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks up a tensor's entry.</summary>
    /// <exception cref="SafetensorsException">No tensor of that name; the message lists some that exist.</exception>
    public SafetensorsEntry GetEntry(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out SafetensorsEntry? e)) return e;
        throw new SafetensorsException(FilePath, name, "no such tensor; " + DescribeAvailable(Entries.Select(x => x.Name), name));
    }

    /// <summary>
    /// The tensor's raw little-endian bytes inside the mapping, valid until Dispose. Tensors over
    /// 2 GiB do not fit a span; use <see cref="GetPointer"/> for those.
    /// </summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        SafetensorsEntry e = GetEntry(name);
        if (e.ByteLength > int.MaxValue)
            throw new SafetensorsException(FilePath, name,
                $"tensor is {e.ByteLength} bytes, too large for a span; use GetPointer");
        return _file.Span(e.DataOffset, e.ByteLength);
    }

    /// <summary>Pointer to the tensor's first byte inside the mapping; valid until Dispose. Read-only memory.</summary>
    public byte* GetPointer(string name)
    {
        SafetensorsEntry e = GetEntry(name);
        return _file.Pointer(e.DataOffset, e.ByteLength);
    }

    /// <summary>Copies the tensor's raw bytes; <paramref name="destination"/> must be exactly ByteLength long.</summary>
    public void CopyTo(string name, Span<byte> destination)
    {
        SafetensorsEntry e = GetEntry(name);
        if (destination.Length != e.ByteLength)
            throw new ArgumentException(
                $"{FilePath}: tensor '{name}' is {e.ByteLength} bytes but the destination holds {destination.Length}",
                nameof(destination));
        new ReadOnlySpan<byte>(_file.Pointer(e.DataOffset, e.ByteLength), destination.Length).CopyTo(destination);
    }

    /// <summary>
    /// Reads an F32, F16, BF16 or F8_E4M3 tensor as a new float array (narrow types widened exactly; an FP8
    /// tensor's block scale is not applied here, see <see cref="Fp8BlockDequant"/>).
    /// </summary>
    public float[] ReadFloat32(string name)
    {
        SafetensorsEntry e = GetEntry(name);
        RequireFloating(e);
        float[] result = NewArray<float>(e);
        ReadFloat32(name, result);
        return result;
    }

    /// <summary>
    /// Reads an F32, F16, BF16 or F8_E4M3 tensor into <paramref name="destination"/> (exactly ElementCount long).
    /// </summary>
    public void ReadFloat32(string name, Span<float> destination)
    {
        SafetensorsEntry e = GetEntry(name);
        RequireFloating(e);
        if (destination.Length != e.ElementCount)
            throw new ArgumentException(
                $"{FilePath}: tensor '{name}' has {e.ElementCount} elements but the destination holds {destination.Length}",
                nameof(destination));
        SafetensorsFormat.ConvertToFloat32(e.DType, _file.Span(e.DataOffset, e.ByteLength), destination);
    }

    /// <summary>Reads an I32 or I64 tensor as a new long array.</summary>
    public long[] ReadInt64(string name)
    {
        SafetensorsEntry e = GetEntry(name);
        if (e.DType is not (DType.Int32 or DType.Int64))
            throw new SafetensorsException(FilePath, name,
                $"dtype is {SafetensorsFormat.ToDTypeString(e.DType)}; ReadInt64 accepts I32 or I64");
        long[] result = NewArray<long>(e);
        SafetensorsFormat.ConvertToInt64(e.DType, _file.Span(e.DataOffset, e.ByteLength), result);
        return result;
    }

    /// <summary>
    /// Tells the OS the process is done reading this tensor's bytes for now (Linux: <c>madvise(MADV_DONTNEED)</c> on
    /// the pages it spans), so they stop counting as the process's resident memory. The mapping is read-only and
    /// file-backed, so nothing is lost: the pages stay in the page cache and a later read faults them back in, which
    /// also makes it harmless that the first and last page may be shared with neighbouring tensors. Used by loaders
    /// after copying a tensor out, so a mapped checkpoint does not sit resident beside the copy. A no-op elsewhere.
    /// </summary>
    public void ReleasePages(string name) => ReleasePages(name, 0, GetEntry(name).ByteLength);

    /// <summary>
    /// As <see cref="ReleasePages(string)"/> for bytes [offset, offset + length) of the tensor's data, for a loader
    /// copying a large tensor in slices.
    /// </summary>
    public void ReleasePages(string name, long offset, long length)
    {
        SafetensorsEntry e = GetEntry(name);
        if (offset < 0 || length < 0 || offset > e.ByteLength - length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"{FilePath}: bytes [{offset}, {offset + length}) lie outside tensor '{name}' ({e.ByteLength} bytes)");
        _file.ReleasePages(e.DataOffset + offset, length);
    }

    private void RequireFloating(SafetensorsEntry e)
    {
        if (!e.DType.IsFloating() && e.DType != DType.Float8E4M3)
            throw new SafetensorsException(FilePath, e.Name,
                $"dtype is {SafetensorsFormat.ToDTypeString(e.DType)}; ReadFloat32 accepts F32, F16, BF16 or F8_E4M3");
    }

    private T[] NewArray<T>(SafetensorsEntry e)
    {
        // Checked here so a huge tensor gives a clear message rather than OutOfMemory/overflow.
        if (e.ElementCount > Array.MaxLength || e.ByteLength > int.MaxValue)
            throw new SafetensorsException(FilePath, e.Name,
                $"tensor has {e.ElementCount} elements ({e.ByteLength} bytes), too many for a managed array; use GetPointer");
        return new T[e.ElementCount];
    }

    /// <summary>"available: a, b, c, ... (N tensors)" for missing-tensor messages.</summary>
    internal static string DescribeAvailable(IEnumerable<string> names, string wanted)
    {
        var all = names.ToList();
        if (all.Count == 0) return "the file holds no tensors";
        // Names sharing the wanted name's longest prefix first: the typo is usually near the end.
        var shown = all.OrderByDescending(n => CommonPrefix(n, wanted)).ThenBy(n => n, StringComparer.Ordinal).Take(5).ToList();
        string more = all.Count > shown.Count ? ", ..." : "";
        return $"available ({all.Count} tensors): {string.Join(", ", shown.Select(n => $"'{n}'"))}{more}";
    }

    private static int CommonPrefix(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }

    /// <summary>Unmaps the file now. Spans and pointers obtained earlier become invalid.</summary>
    public void Dispose() => _file.Dispose();
}
