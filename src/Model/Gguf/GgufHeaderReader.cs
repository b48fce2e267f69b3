// Source: ggml's GGUF specification (ggml/docs/gguf.md): gguf_header_t, gguf_metadata_kv_t, gguf_tensor_info_t.
using System.Buffers.Binary;
using System.Text;
using NativeReasoner.IO;

namespace NativeReasoner.Model.Gguf;

/// <summary>
/// Parses and validates the header of a GGUF file held in memory. Every read is bounds-checked against the file's
/// length, and every count is checked against the bytes left before anything is allocated for it, so a corrupt count
/// fails with a message instead of exhausting memory.
/// </summary>
internal sealed unsafe class GgufHeaderReader
{
    internal sealed record Parsed(uint Version, GgufMetadata Metadata, GgufTensorInfo[] Tensors, uint Alignment,
        long DataStart);

    private readonly string _path;
    private readonly byte* _data;
    private readonly long _length;
    private long _pos;

    private GgufHeaderReader(string path, byte* data, long length)
    {
        _path = path;
        _data = data;
        _length = length;
    }

    public static Parsed Parse(string path, byte* data, long length) =>
        new GgufHeaderReader(path, data, length).Parse();

    private GgufException Error(string field, string problem) => new(_path, field, problem);

    private long Left => _length - _pos;

    private ReadOnlySpan<byte> Take(long n, string field)
    {
        if (n < 0 || n > Left)
            throw Error(field, $"needs {n} bytes at offset {_pos}, but the file ends after {Left} (truncated?)");
        var span = new ReadOnlySpan<byte>(_data + _pos, checked((int)n));
        _pos += n;
        return span;
    }

    private uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));
    private ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    /// <summary>A count that must be ≤ the bytes left divided by the smallest size of one item.</summary>
    private long Count(string field, long minItemBytes)
    {
        ulong n = U64(field);
        long max = Left / minItemBytes;
        if (n > (ulong)max)
            throw Error(field, $"is {n}, but only {Left} bytes follow (room for at most {max}): corrupt or truncated");
        return (long)n;
    }

    private string String(string field)
    {
        ulong n = U64(field + " (string length)");
        if (n > (ulong)GgufFormat.MaxStringBytes)
            throw Error(field, $"string length {n} exceeds the {GgufFormat.MaxStringBytes}-byte limit");
        var bytes = Take((long)n, field);
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new GgufException(_path, field, "is not valid UTF-8", e);
        }
    }

    private Parsed Parse()
    {
        uint magic = U32("magic");
        if (magic != GgufFormat.Magic)
            throw Error("magic", $"is 0x{magic:X8}, expected 0x{GgufFormat.Magic:X8} (\"GGUF\"): not a GGUF file");
        uint version = U32("version");
        if (version is not (2 or 3))
            throw Error("version", $"is {version}, expected {GgufFormat.Version} (version 2 is read too; version 1 " +
                "and big-endian files are not supported)");
        // A tensor info takes ≥ 24 bytes (name length, n_dims, type, offset), a key-value ≥ 13.
        long tensorCount = Count("tensor_count", 24);
        long kvCount = Count("metadata_kv_count", 13);

        var metadata = new GgufMetadata(_path);
        for (long i = 0; i < kvCount; i++)
        {
            string key = String($"metadata key #{i}");
            string field = $"metadata key '{key}'";
            if (metadata.Contains(key)) throw Error(field, "appears twice (keys must be unique)");
            var type = (GgufValueType)U32(field + " (value type)");
            metadata.Add(key, Value(type, field, 0));
        }

        uint alignment = GgufFormat.DefaultAlignment;
        if (metadata.TryGet(GgufFormat.AlignmentKey, out var a))
        {
            if (a.Value is not uint al || al == 0 || (al & (al - 1)) != 0)
                throw Error($"metadata key '{GgufFormat.AlignmentKey}'", $"is {a}, expected a power of two (uint32)");
            alignment = al;
        }

        var infos = new (string Name, long[] Dims, GgmlType Type, long Offset, long Bytes)[tensorCount];
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            string name = String($"tensor info #{i} name");
            string field = $"tensor '{name}'";
            if (!names.Add(name)) throw Error(field, "appears twice (tensor names must be unique)");
            uint nDims = U32(field + " n_dimensions");
            if (nDims is 0 or > GgufFormat.MaxDimensions)
                throw Error(field, $"n_dimensions is {nDims}, expected 1 to {GgufFormat.MaxDimensions}");
            var dims = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = U64($"{field} dimension {d}");
                if (ne == 0 || ne > (ulong)GgufFormat.MaxElements)
                    throw Error(field, $"dimension {d} is {ne}, expected 1 to {GgufFormat.MaxElements}");
                dims[d] = (long)ne;
                if (elements > GgufFormat.MaxElements / dims[d])
                    throw Error(field, $"has more than {GgufFormat.MaxElements} elements (dimensions " +
                        $"{string.Join(" × ", dims.Take(d + 1))} …)");
                elements *= dims[d];
            }
            uint rawType = U32(field + " type");
            var type = (GgmlType)rawType;
            if (!Enum.IsDefined(type) || !GgmlTypeInfo.TryGetBlock(type, out int blockElements, out int blockBytes))
                throw Error(field, $"type is {rawType}, not a ggml type this reader knows (F32=0, F16=1, Q4_0=2, " +
                    "Q8_0=8, Q4_K=12, Q6_K=14, BF16=30, …)");
            if (dims[0] % blockElements != 0)
                throw Error(field, $"dimension 0 is {dims[0]}, not a multiple of {type}'s block of {blockElements}");
            long bytes = elements / blockElements * blockBytes;
            ulong offset = U64(field + " offset");
            if (offset % alignment != 0)
                throw Error(field, $"offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > (ulong)_length)
                throw Error(field, $"offset {offset} lies beyond the end of the {_length}-byte file");
            infos[i] = (name, dims, type, (long)offset, bytes);
        }

        long dataStart = GgufFormat.AlignUp(_pos, alignment);
        if (tensorCount > 0 && dataStart > _length)
            throw Error("data section", $"starts at {dataStart} (the header ends at {_pos}, padded to {alignment}), " +
                $"beyond the end of the {_length}-byte file (truncated?)");
        var tensors = new GgufTensorInfo[tensorCount];
        for (long i = 0; i < tensorCount; i++)
        {
            var (name, dims, type, offset, bytes) = infos[i];
            if (!MappedFile.Fits(offset, bytes, _length - dataStart))
                throw Error($"tensor '{name}'", $"data [{offset}, {offset + bytes}) of the data section runs past " +
                    $"the end of the file ({_length - dataStart} data bytes; truncated or a bad offset)");
            tensors[i] = new GgufTensorInfo(name, dims, type, offset, dataStart + offset, bytes);
        }
        // Tensors must not share bytes: an overlap means a corrupt offset.
        var sorted = tensors.OrderBy(t => t.Offset).ToArray();
        for (int i = 1; i < sorted.Length; i++)
            if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].ByteLength)
                throw Error($"tensor '{sorted[i].Name}'", $"offset {sorted[i].Offset} overlaps tensor " +
                    $"'{sorted[i - 1].Name}' ([{sorted[i - 1].Offset}, " +
                    $"{sorted[i - 1].Offset + sorted[i - 1].ByteLength}))");
        return new Parsed(version, metadata, tensors, alignment, dataStart);
    }

    private GgufValue Value(GgufValueType type, string field, int depth)
    {
        switch (type)
        {
            case GgufValueType.UInt8: return GgufValue.Of(Take(1, field)[0]);
            case GgufValueType.Int8: return GgufValue.Of((sbyte)Take(1, field)[0]);
            case GgufValueType.UInt16: return GgufValue.Of(BinaryPrimitives.ReadUInt16LittleEndian(Take(2, field)));
            case GgufValueType.Int16: return GgufValue.Of(BinaryPrimitives.ReadInt16LittleEndian(Take(2, field)));
            case GgufValueType.UInt32: return GgufValue.Of(U32(field));
            case GgufValueType.Int32: return GgufValue.Of(BinaryPrimitives.ReadInt32LittleEndian(Take(4, field)));
            case GgufValueType.Float32: return GgufValue.Of(BinaryPrimitives.ReadSingleLittleEndian(Take(4, field)));
            case GgufValueType.UInt64: return GgufValue.Of(U64(field));
            case GgufValueType.Int64: return GgufValue.Of(BinaryPrimitives.ReadInt64LittleEndian(Take(8, field)));
            case GgufValueType.Float64: return GgufValue.Of(BinaryPrimitives.ReadDoubleLittleEndian(Take(8, field)));
            case GgufValueType.Bool: return GgufValue.Of(Bool(field));
            case GgufValueType.String: return GgufValue.Of(String(field));
            case GgufValueType.Array: return GgufValue.Of(Array(field, depth + 1));
            default:
                throw Error(field, $"value type is {(uint)type}, not a GGUF value type (0 to 12)");
        }
    }

    private bool Bool(string field)
    {
        byte b = Take(1, field)[0];
        if (b > 1) throw Error(field, $"bool byte is {b}, expected 0 or 1");
        return b == 1;
    }

    private GgufArray Array(string field, int depth)
    {
        if (depth > GgufFormat.MaxArrayNesting)
            throw Error(field, $"arrays nest deeper than {GgufFormat.MaxArrayNesting} levels");
        var raw = U32(field + " (array item type)");
        var type = (GgufValueType)raw;
        if (!type.IsKnown()) throw Error(field, $"array item type is {raw}, not a GGUF value type (0 to 12)");
        // Strings and nested arrays take at least 8 bytes (their length or their type + count) per item.
        int minItem = type.FixedSize() > 0 ? type.FixedSize() : type == GgufValueType.String ? 8 : 12;
        long n = Count(field + " (array length)", minItem);
        if (n > System.Array.MaxLength) throw Error(field, $"array length {n} is more than an array can hold");
        int count = (int)n;
        switch (type)
        {
            case GgufValueType.String:
                {
                    var items = new string[count];
                    for (int i = 0; i < count; i++) items[i] = String($"{field}[{i}]");
                    return new GgufArray(type, items);
                }
            case GgufValueType.Array:
                {
                    var items = new GgufArray[count];
                    for (int i = 0; i < count; i++) items[i] = Array($"{field}[{i}]", depth + 1);
                    return new GgufArray(type, items);
                }
            case GgufValueType.Bool:
                {
                    var items = new bool[count];
                    for (int i = 0; i < count; i++) items[i] = Bool($"{field}[{i}]");
                    return new GgufArray(type, items);
                }
            default:
                {
                    var bytes = Take((long)count * minItem, field);
                    var items = System.Array.CreateInstance(GgufArray.ClrType(type), count);
                    // Little-endian on disk and on every platform .NET runs this on (x64, arm64).
                    if (!BitConverter.IsLittleEndian)
                        throw new PlatformNotSupportedException("GGUF needs little-endian");
                    fixed (byte* p = bytes)
                    {
                        var handle = System.Runtime.InteropServices.GCHandle.Alloc(items,
                            System.Runtime.InteropServices.GCHandleType.Pinned);
                        try
                        {
                            Buffer.MemoryCopy(p, (void*)handle.AddrOfPinnedObject(), bytes.Length, bytes.Length);
                        }
                        finally
                        {
                            handle.Free();
                        }
                    }
                    return new GgufArray(type, items);
                }
        }
    }
}
