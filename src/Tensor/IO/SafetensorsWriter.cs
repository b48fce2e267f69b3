using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using NativeReasoner.Kernels;

namespace NativeReasoner.IO;

/// <summary>Writes single safetensors files atomically.</summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>. The header lists tensors
    /// sorted by name; data is laid out contiguously by descending element size, then name, so
    /// every tensor is naturally aligned relative to the 8-byte aligned data section (the same
    /// layout the reference implementation produces). The file appears at <paramref name="path"/>
    /// only once complete and flushed: on any failure an existing file there is left untouched.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid tensor (bad name, shape, size) or duplicate names.</exception>
    public static void Write(string path, IEnumerable<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        // Materialize and validate everything before touching the file system.
        SafetensorsTensor[] list = tensors.ToArray();
        Validate(list);
        WriteValidated(path, list, metadata);
    }

    /// <summary>Checks names, shapes and sizes; throws ArgumentException describing the first problem.</summary>
    internal static void Validate(IReadOnlyList<SafetensorsTensor> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (SafetensorsTensor? t in tensors)
        {
            if (t is null) throw new ArgumentException("tensor list contains null", nameof(tensors));
            if (string.IsNullOrEmpty(t.Name)) throw new ArgumentException("tensor name is empty", nameof(tensors));
            if (t.Name == SafetensorsFormat.MetadataKey)
                throw new ArgumentException($"'{SafetensorsFormat.MetadataKey}' is reserved and cannot be a tensor name", nameof(tensors));
            if (!names.Add(t.Name)) throw new ArgumentException($"duplicate tensor name '{t.Name}'", nameof(tensors));
            if (t.Shape is null) throw new ArgumentException($"tensor '{t.Name}': shape is null", nameof(tensors));
            if (t.Shape.Any(d => d < 0))
                throw new ArgumentException($"tensor '{t.Name}': shape {SafetensorsFormat.ShapeString(t.Shape)} has a negative dimension", nameof(tensors));
            _ = SafetensorsFormat.ToDTypeString(t.DType); // Throws for values outside the enum.
            long? needed = SafetensorsFormat.TryByteCount(t.DType, t.Shape);
            if (needed is null)
                throw new ArgumentException($"tensor '{t.Name}': shape {SafetensorsFormat.ShapeString(t.Shape)} is too large", nameof(tensors));
            if (t.Data.Length != needed.Value)
                throw new ArgumentException(
                    $"tensor '{t.Name}': data is {t.Data.Length} bytes but {SafetensorsFormat.ToDTypeString(t.DType)} × " +
                    $"{SafetensorsFormat.ShapeString(t.Shape)} needs {needed.Value}", nameof(tensors));
        }
    }

    internal static void WriteValidated(string path, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        // Data layout: larger elements first so alignment never needs padding; name for determinism.
        SafetensorsTensor[] dataOrder = tensors
            .OrderByDescending(t => t.DType.SizeOf())
            .ThenBy(t => t.Name, StringComparer.Ordinal)
            .ToArray();
        var offsets = new Dictionary<string, (long Begin, long End)>(StringComparer.Ordinal);
        long pos = 0;
        foreach (SafetensorsTensor t in dataOrder)
        {
            offsets[t.Name] = (pos, pos + t.Data.Length);
            pos += t.Data.Length;
        }

        byte[] header = BuildHeader(tensors, offsets, metadata);

        AtomicWrite(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            stream.Write(len);
            stream.Write(header);
            foreach (SafetensorsTensor t in dataOrder) stream.Write(t.Data.Span);
        });
    }

    private static byte[] BuildHeader(IReadOnlyList<SafetensorsTensor> tensors,
        Dictionary<string, (long Begin, long End)> offsets, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names readable; the output is still valid JSON.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(SafetensorsFormat.MetadataKey);
                foreach (KeyValuePair<string, string> kv in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    ArgumentNullException.ThrowIfNull(kv.Value, $"metadata['{kv.Key}']");
                    w.WriteString(kv.Key, kv.Value);
                }
                w.WriteEndObject();
            }
            foreach (SafetensorsTensor t in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", SafetensorsFormat.ToDTypeString(t.DType));
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                (long begin, long end) = offsets[t.Name];
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(begin);
                w.WriteNumberValue(end);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }

        // Pad with spaces (insignificant JSON whitespace) so the data section starts 8-byte aligned.
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        byte[] header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    /// <summary>
    /// Writes via a uniquely named temp file in the target's directory (so the final rename stays
    /// on one file system and is atomic), flushes it to disk, then renames it over the target.
    /// The temp file is removed if anything fails.
    /// </summary>
    internal static void AtomicWrite(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string temp = full + ".tmp-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                write(fs);
                // Flush to the device before the rename, otherwise a crash could leave a renamed
                // but empty/partial file.
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
