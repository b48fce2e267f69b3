// Source: ggml's GGUF specification (ggml/docs/gguf.md): version 3, little-endian, tensor data aligned to
// general.alignment and offsets relative to the data section.
using System.Text;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// A tensor to write: its name, ggml type, row-major shape (outermost first; written as ggml's ne, innermost first),
/// the exact number of bytes it takes in that type, and a callback that writes those bytes.
/// </summary>
public sealed record GgufTensorSource(string Name, GgmlType Type, long[] Shape, long ByteLength,
    Action<Stream> WriteData)
{
    public static GgufTensorSource FromBytes(string name, GgmlType type, long[] shape, byte[] data) =>
        new(name, type, shape, data.Length, s => s.Write(data));
}

/// <summary>Writes GGUF version 3 files, atomically (a temporary file renamed into place).</summary>
public static class GgufWriter
{
    /// <summary>
    /// Writes <paramref name="metadata"/> and <paramref name="tensors"/> to <paramref name="path"/>. The alignment is
    /// the metadata's general.alignment (a power-of-two uint32) or 32. Each tensor's byte count must match its type
    /// and shape, and its callback must write exactly that many bytes.
    /// </summary>
    public static void Write(string path, GgufMetadata metadata, IReadOnlyList<GgufTensorSource> tensors)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);
        uint alignment = GgufFormat.DefaultAlignment;
        if (metadata.TryGet(GgufFormat.AlignmentKey, out var a))
        {
            if (a.Value is not uint al || al == 0 || (al & (al - 1)) != 0)
                throw new GgufException(path, $"metadata key '{GgufFormat.AlignmentKey}'",
                    $"is {a}, expected a power of two (uint32)");
            alignment = al;
        }
        var offsets = new long[tensors.Count];
        long offset = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            string field = $"tensor '{t.Name}'";
            if (!names.Add(t.Name)) throw new GgufException(path, field, "appears twice");
            if (t.Shape.Length is 0 or > GgufFormat.MaxDimensions || t.Shape.Any(d => d < 1))
                throw new GgufException(path, field, $"shape [{string.Join(", ", t.Shape)}] must have 1 to " +
                    $"{GgufFormat.MaxDimensions} positive dimensions");
            long elements = t.Shape.Aggregate(1L, (p, d) => checked(p * d));
            long expected = GgmlTypeInfo.RowBytes(t.Type, t.Shape[^1]) * (elements / t.Shape[^1]);
            if (t.ByteLength != expected)
                throw new GgufException(path, field, $"is {t.ByteLength} bytes, but {t.Type} of shape " +
                    $"[{string.Join(", ", t.Shape)}] takes {expected}");
            offsets[i] = offset;
            offset = GgufFormat.AlignUp(offset + t.ByteLength, alignment);
        }

        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, "." + Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                using (var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true))
                {
                    w.Write(GgufFormat.Magic);
                    w.Write(GgufFormat.Version);
                    w.Write((ulong)tensors.Count);
                    w.Write((ulong)metadata.Count);
                    foreach (var (key, value) in metadata.Entries)
                    {
                        WriteString(w, key);
                        w.Write((uint)value.Type);
                        WriteValue(w, value.Value);
                    }
                    for (int i = 0; i < tensors.Count; i++)
                    {
                        var t = tensors[i];
                        WriteString(w, t.Name);
                        w.Write((uint)t.Shape.Length);
                        for (int d = t.Shape.Length - 1; d >= 0; d--) w.Write((ulong)t.Shape[d]);
                        w.Write((uint)t.Type);
                        w.Write((ulong)offsets[i]);
                    }
                    w.Flush();
                }
                Pad(fs, alignment);
                long dataStart = fs.Position;
                for (int i = 0; i < tensors.Count; i++)
                {
                    var t = tensors[i];
                    Pad(fs, alignment);
                    long start = fs.Position;
                    t.WriteData(fs);
                    long written = fs.Position - start;
                    if (written != t.ByteLength || start - dataStart != offsets[i])
                        throw new GgufException(path, $"tensor '{t.Name}'", $"its writer produced {written} bytes, " +
                            $"expected {t.ByteLength}");
                }
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static void Pad(Stream s, uint alignment)
    {
        long pad = GgufFormat.AlignUp(s.Position, alignment) - s.Position;
        for (long i = 0; i < pad; i++) s.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, object value)
    {
        switch (value)
        {
            case byte v: w.Write(v); break;
            case sbyte v: w.Write(v); break;
            case ushort v: w.Write(v); break;
            case short v: w.Write(v); break;
            case uint v: w.Write(v); break;
            case int v: w.Write(v); break;
            case float v: w.Write(v); break;
            case bool v: w.Write((byte)(v ? 1 : 0)); break;
            case string v: WriteString(w, v); break;
            case ulong v: w.Write(v); break;
            case long v: w.Write(v); break;
            case double v: w.Write(v); break;
            case GgufArray arr:
                w.Write((uint)arr.ElementType);
                w.Write((ulong)arr.Length);
                foreach (object item in arr.Items) WriteValue(w, item);
                break;
            default:
                throw new ArgumentException($"not a GGUF value: {value.GetType().Name}", nameof(value));
        }
    }
}
