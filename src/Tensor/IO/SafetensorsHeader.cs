using System.Text.Json;
using System.Text.Unicode;
using NativeReasoner.Kernels;

namespace NativeReasoner.IO;

/// <summary>
/// Parses and validates the JSON header of a safetensors file against the size of its data
/// section. Everything read from the header is treated as hostile: every number is range-checked
/// with overflow-safe arithmetic before it is used as an offset, so a valid result can be used to
/// index the mapping without further checks.
/// </summary>
internal static class SafetensorsHeader
{
    public sealed record Parsed(IReadOnlyDictionary<string, string> Metadata, SafetensorsEntry[] Entries);

    /// <param name="file">File path, for messages.</param>
    /// <param name="json">The header bytes (without the 8-byte length prefix).</param>
    /// <param name="dataStart">Absolute offset of the data section (8 + header length).</param>
    /// <param name="dataLength">Bytes in the data section (file length − dataStart).</param>
    public static Parsed Parse(string file, ReadOnlyMemory<byte> json, long dataStart, long dataLength)
    {
        // System.Text.Json does not reject every malformed UTF-8 sequence up front, so check it
        // here to give one clear error instead of a failure deep inside a later string read.
        if (!Utf8.IsValid(json.Span))
            throw new SafetensorsException(file, null, "header is not valid UTF-8");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(file, null, $"header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            try
            {
                return Interpret(file, doc.RootElement, dataStart, dataLength);
            }
            catch (InvalidOperationException e)
            {
                // JsonElement string accessors throw this for escaped lone surrogates ("\ud800").
                throw new SafetensorsException(file, null, $"header contains an invalid string: {e.Message}", e);
            }
        }
    }

    private static Parsed Interpret(string file, JsonElement root, long dataStart, long dataLength)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(file, null, $"header must be a JSON object but is {Describe(root.ValueKind)}");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<SafetensorsEntry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;

        foreach (JsonProperty prop in root.EnumerateObject())
        {
            string name = prop.Name;
            // JSON allows duplicate keys; for us a second definition would be ambiguous.
            if (name == SafetensorsFormat.MetadataKey)
            {
                if (sawMetadata)
                    throw new SafetensorsException(file, null, "header has more than one __metadata__ entry");
                sawMetadata = true;
                ReadMetadata(file, prop.Value, metadata);
                continue;
            }
            if (!seen.Add(name))
                throw new SafetensorsException(file, name, "tensor is defined more than once in the header");
            entries.Add(ReadEntry(file, name, prop.Value, dataStart, dataLength));
        }

        CheckOverlaps(file, entries);

        // "File order": the order the data appears in the data section; header order breaks ties
        // (only zero-size tensors can share an offset). List.Sort is unstable, so use OrderBy.
        SafetensorsEntry[] ordered = entries.Select((e, i) => (e, i))
            .OrderBy(t => t.e.DataOffset).ThenBy(t => t.i)
            .Select(t => t.e).ToArray();
        return new Parsed(metadata, ordered);
    }

    private static void ReadMetadata(string file, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null)
            return; // Some writers emit "__metadata__": null for "no metadata".
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(file, null, $"__metadata__ must be an object of strings but is {Describe(value.ValueKind)}");
        foreach (JsonProperty p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsException(file, null,
                    $"__metadata__ value for key '{p.Name}' must be a string but is {Describe(p.Value.ValueKind)}");
            if (!metadata.TryAdd(p.Name, p.Value.GetString()!))
                throw new SafetensorsException(file, null, $"__metadata__ key '{p.Name}' appears more than once");
        }
    }

    private static SafetensorsEntry ReadEntry(string file, string name, JsonElement value, long dataStart, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(file, name, $"entry must be a JSON object but is {Describe(value.ValueKind)}");

        JsonElement dtypeEl = Required(file, name, value, "dtype");
        JsonElement shapeEl = Required(file, name, value, "shape");
        JsonElement offsetsEl = Required(file, name, value, "data_offsets");

        if (dtypeEl.ValueKind != JsonValueKind.String)
            throw new SafetensorsException(file, name, $"dtype must be a string but is {Describe(dtypeEl.ValueKind)}");
        string dtypeStr = dtypeEl.GetString()!;
        if (!SafetensorsFormat.TryParseDType(dtypeStr, out DType dtype))
            throw new SafetensorsException(file, name,
                $"unsupported dtype '{dtypeStr}' (supported: {SafetensorsFormat.SupportedDTypes})");

        if (shapeEl.ValueKind != JsonValueKind.Array)
            throw new SafetensorsException(file, name, $"shape must be an array but is {Describe(shapeEl.ValueKind)}");
        var shape = new long[shapeEl.GetArrayLength()];
        int k = 0;
        foreach (JsonElement d in shapeEl.EnumerateArray())
        {
            // TryGetInt64 rejects fractions, exponents and anything beyond long range.
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new SafetensorsException(file, name,
                    $"shape[{k}] = {d.GetRawText()} is not a non-negative integer");
            shape[k++] = dim;
        }

        if (offsetsEl.ValueKind != JsonValueKind.Array || offsetsEl.GetArrayLength() != 2)
            throw new SafetensorsException(file, name,
                $"data_offsets must be an array of two integers but is {Truncate(offsetsEl.GetRawText())}");
        long begin = ReadOffset(file, name, offsetsEl[0], "begin");
        long end = ReadOffset(file, name, offsetsEl[1], "end");
        if (end < begin)
            throw new SafetensorsException(file, name, $"data_offsets [{begin}, {end}] end is before begin");
        if (!MappedFile.Fits(begin, end - begin, dataLength))
            throw new SafetensorsException(file, name,
                $"data_offsets [{begin}, {end}] extend beyond the data section ({dataLength} bytes)");

        long? elements = SafetensorsFormat.TryElementCount(shape);
        long? needed = SafetensorsFormat.TryByteCount(dtype, shape);
        string shapeStr = SafetensorsFormat.ShapeString(shape);
        if (elements is null || needed is null)
            throw new SafetensorsException(file, name,
                $"{dtypeStr} × {shapeStr} is too large (byte count overflows 64 bits)");
        long held = end - begin; // Cannot overflow: 0 <= begin <= end.
        if (held != needed.Value)
            throw new SafetensorsException(file, name,
                $"data_offsets [{begin}, {end}] hold {held} bytes but {dtypeStr} × {shapeStr} needs {needed.Value}");

        // end <= dataLength and dataStart + dataLength == file length, so this cannot overflow.
        return new SafetensorsEntry(name, dtype, shape, dataStart + begin, held, elements.Value);
    }

    private static long ReadOffset(string file, string name, JsonElement el, string which)
    {
        // Values like 18446744073709551615 are valid JSON numbers but do not fit a long;
        // TryGetInt64 fails on them instead of wrapping, which is what keeps later math sound.
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt64(out long v) || v < 0)
            throw new SafetensorsException(file, name,
                $"data_offsets {which} = {Truncate(el.GetRawText())} is not an integer in [0, {long.MaxValue}]");
        return v;
    }

    private static JsonElement Required(string file, string name, JsonElement obj, string key)
    {
        if (!obj.TryGetProperty(key, out JsonElement el))
            throw new SafetensorsException(file, name, $"entry is missing '{key}'");
        return el;
    }

    /// <summary>
    /// Rejects tensors whose byte ranges share any byte. Zero-length ranges occupy no bytes and
    /// therefore never overlap; gaps between tensors are tolerated.
    /// </summary>
    private static void CheckOverlaps(string file, List<SafetensorsEntry> entries)
    {
        var ranges = entries.Where(e => e.ByteLength > 0).OrderBy(e => e.DataOffset).ToArray();
        for (int i = 1; i < ranges.Length; i++)
        {
            SafetensorsEntry prev = ranges[i - 1], cur = ranges[i];
            // Sorted by begin and non-overlapping so far, so only the predecessor can collide.
            if (cur.DataOffset < prev.DataOffset + prev.ByteLength)
                throw new SafetensorsException(file, cur.Name,
                    $"data overlaps tensor '{prev.Name}' (bytes {cur.DataOffset}..{cur.DataOffset + cur.ByteLength} vs " +
                    $"{prev.DataOffset}..{prev.DataOffset + prev.ByteLength} of the file)");
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "...";
}
