using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace NativeReasoner.IO;

/// <summary>
/// A checkpoint directory in the Hugging Face layout: either one <c>model.safetensors</c>, or
/// shards <c>model-0000i-of-0000n.safetensors</c> listed by <c>model.safetensors.index.json</c>.
/// Each shard is mapped once; lookups go through the index's weight map.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly Dictionary<string, SafetensorsFile> _fileOf;
    private readonly List<string> _names;
    private readonly List<SafetensorsFile> _files;

    /// <summary>The directory the checkpoint was opened from.</summary>
    public string Directory { get; }

    /// <summary>
    /// For a sharded checkpoint, the index's <c>metadata</c> (non-string values such as
    /// <c>total_size</c> as their JSON text); for a single file, its <c>__metadata__</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The opened files: one, or the shards in index order of first appearance.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>Tensor names: index (weight_map) order, or file order for a single file.</summary>
    public IEnumerable<string> Names => _names;

    private SafetensorsCheckpoint(string directory, IReadOnlyDictionary<string, string> metadata,
        List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> fileOf, List<string> names)
    {
        Directory = directory;
        Metadata = metadata;
        _files = files;
        _fileOf = fileOf;
        _names = names;
    }

    /// <summary>Opens the checkpoint in <paramref name="directory"/>, preferring the shard index if present.</summary>
    /// <exception cref="SafetensorsException">Missing files, a malformed index or shard, or an index/shard mismatch.</exception>
    public static SafetensorsCheckpoint Open(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string indexPath = Path.Combine(directory, IndexFileName);
        string singlePath = Path.Combine(directory, SingleFileName);

        if (File.Exists(indexPath)) return OpenSharded(directory, indexPath);

        if (File.Exists(singlePath))
        {
            SafetensorsFile f = SafetensorsFile.Open(singlePath);
            var fileOf = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (SafetensorsEntry e in f.Entries) fileOf[e.Name] = f;
            return new SafetensorsCheckpoint(directory, f.Metadata, [f], fileOf, f.Entries.Select(e => e.Name).ToList());
        }

        string why = System.IO.Directory.Exists(directory) ? "directory" : "directory does not exist; it";
        throw new SafetensorsException(directory, null, $"{why} contains neither {IndexFileName} nor {SingleFileName}");
    }

    private static SafetensorsCheckpoint OpenSharded(string directory, string indexPath)
    {
        var (metadata, weightMap) = ReadIndex(indexPath);

        var files = new List<SafetensorsFile>();
        var byShard = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var fileOf = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach ((string tensor, string shard) in weightMap)
            {
                if (!byShard.TryGetValue(shard, out SafetensorsFile? file))
                {
                    string shardPath = Path.Combine(directory, shard);
                    if (!File.Exists(shardPath))
                        throw new SafetensorsException(indexPath, tensor, $"index maps the tensor to shard '{shard}' but {shardPath} does not exist");
                    file = SafetensorsFile.Open(shardPath);
                    files.Add(file);
                    byShard.Add(shard, file);
                }
                if (!file.Contains(tensor))
                    throw new SafetensorsException(indexPath, tensor, $"index says the tensor is in shard '{shard}' but that shard lacks it");
                fileOf.Add(tensor, file);
            }
        }
        catch
        {
            // Don't leak mappings of shards opened before the failure.
            foreach (SafetensorsFile f in files) f.Dispose();
            throw;
        }
        return new SafetensorsCheckpoint(directory, metadata, files, fileOf, weightMap.Select(kv => kv.Key).ToList());
    }

    private static (Dictionary<string, string> Metadata, List<KeyValuePair<string, string>> WeightMap) ReadIndex(string indexPath)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(indexPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafetensorsException(indexPath, null, $"cannot read index: {e.Message}", e);
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(bytes);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(indexPath, null, "index must be a JSON object");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("metadata", out JsonElement md) && md.ValueKind != JsonValueKind.Null)
            {
                if (md.ValueKind != JsonValueKind.Object)
                    throw new SafetensorsException(indexPath, null, "index 'metadata' must be an object");
                foreach (JsonProperty p in md.EnumerateObject())
                    metadata[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
            }

            if (!root.TryGetProperty("weight_map", out JsonElement wm) || wm.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(indexPath, null, "index lacks a 'weight_map' object");
            var weightMap = new List<KeyValuePair<string, string>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsException(indexPath, p.Name, "weight_map value must be a shard file name string");
                string shard = p.Value.GetString()!;
                // Shards must be plain file names beside the index; this also stops a hostile index
                // from reaching files elsewhere via "../" or absolute paths.
                if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or "..")
                    throw new SafetensorsException(indexPath, p.Name, $"weight_map shard '{shard}' is not a plain file name");
                if (!seen.Add(p.Name))
                    throw new SafetensorsException(indexPath, p.Name, "weight_map lists the tensor more than once");
                weightMap.Add(new(p.Name, shard));
            }
            return (metadata, weightMap);
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(indexPath, null, $"index is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new SafetensorsException(indexPath, null, $"index contains an invalid string: {e.Message}", e);
        }
    }

    public bool Contains(string name) => _fileOf.ContainsKey(name);

    /// <summary>The opened file holding the tensor (for GetPointer/CopyTo/ReadInt64).</summary>
    public SafetensorsFile GetFile(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_fileOf.TryGetValue(name, out SafetensorsFile? f)) return f;
        throw new SafetensorsException(Directory, name, "no such tensor in checkpoint; " + SafetensorsFile.DescribeAvailable(_names, name));
    }

    public SafetensorsEntry GetEntry(string name) => GetFile(name).GetEntry(name);

    public ReadOnlySpan<byte> GetBytes(string name) => GetFile(name).GetBytes(name);

    public float[] ReadFloat32(string name) => GetFile(name).ReadFloat32(name);

    public void ReadFloat32(string name, Span<float> destination) => GetFile(name).ReadFloat32(name, destination);

    public long[] ReadInt64(string name) => GetFile(name).ReadInt64(name);

    /// <summary>Drops the tensor's mapped pages from resident memory (<see cref="SafetensorsFile.ReleasePages"/>).
    /// </summary>
    public void ReleasePages(string name) => GetFile(name).ReleasePages(name);

    public void Dispose()
    {
        foreach (SafetensorsFile f in _files) f.Dispose();
    }

    /// <summary>
    /// Writes a checkpoint into <paramref name="directory"/> (created if needed). If the tensors'
    /// data fits in <paramref name="maxShardBytes"/> the result is one <c>model.safetensors</c>;
    /// otherwise tensors are packed greedily, in the given order, into shards
    /// <c>model-00001-of-0000n.safetensors</c> (a tensor larger than the limit gets a shard of
    /// its own) plus <c>model.safetensors.index.json</c>. Every file is written atomically;
    /// shards go first and the index last, so readers never see an index naming absent shards.
    /// <paramref name="metadata"/> goes into every file's <c>__metadata__</c> and, beside
    /// <c>total_size</c>, into the index. A stale index (single-file write) or stale
    /// <c>model.safetensors</c> (sharded write) is removed so the directory is unambiguous.
    /// </summary>
    public static void Write(string directory, IReadOnlyList<SafetensorsTensor> tensors, long maxShardBytes = long.MaxValue,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        SafetensorsWriter.Validate(tensors);
        System.IO.Directory.CreateDirectory(directory);

        var shards = new List<List<SafetensorsTensor>>();
        long current = 0;
        foreach (SafetensorsTensor t in tensors)
        {
            // Start a new shard when this tensor would push a non-empty one over the limit.
            if (shards.Count == 0 || (shards[^1].Count > 0 && current + t.Data.Length > maxShardBytes))
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(t);
            current += t.Data.Length;
        }

        string indexPath = Path.Combine(directory, IndexFileName);
        string singlePath = Path.Combine(directory, SingleFileName);
        if (shards.Count <= 1)
        {
            SafetensorsWriter.WriteValidated(singlePath, tensors, metadata);
            File.Delete(indexPath);
            return;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long totalSize = 0;
        for (int i = 0; i < shards.Count; i++)
        {
            string shardName = string.Create(CultureInfo.InvariantCulture, $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors");
            SafetensorsWriter.WriteValidated(Path.Combine(directory, shardName), shards[i], metadata);
            foreach (SafetensorsTensor t in shards[i])
            {
                weightMap[t.Name] = shardName;
                totalSize += t.Data.Length;
            }
        }

        SafetensorsWriter.AtomicWrite(indexPath, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions
            {
                Indented = true,
                Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            });
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", totalSize);
            if (metadata is not null)
                foreach (KeyValuePair<string, string> kv in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    if (kv.Key != "total_size") w.WriteString(kv.Key, kv.Value);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (KeyValuePair<string, string> kv in weightMap) w.WriteString(kv.Key, kv.Value);
            w.WriteEndObject();
            w.WriteEndObject();
        });
        File.Delete(singlePath);
    }
}
