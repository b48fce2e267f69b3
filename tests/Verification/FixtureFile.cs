using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace NativeReasoner.Tests.Verification;

/// <summary>
/// A minimal, strict reader of the safetensors fixtures (F32 and I64 only), independent of the engine's
/// own safetensors code so that a bug there cannot hide an op error here (or the other way round).
/// </summary>
internal sealed class FixtureFile
{
    private readonly Dictionary<string, HostTensor> _tensors = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public string Path { get; }

    private FixtureFile(string path, Dictionary<string, string> metadata)
    {
        Path = path;
        Metadata = metadata;
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public HostTensor Get(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{Path}: no tensor '{name}'");

    public IEnumerable<string> Names => _tensors.Keys;

    /// <summary>
    /// The fixture directory: NR_FIXTURES_DIR when set (CI points it at freshly generated fixtures), otherwise
    /// the fixtures/ folder the test project copies next to the test assembly.
    /// </summary>
    public static string Directory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("NR_FIXTURES_DIR");
            return string.IsNullOrWhiteSpace(env) ? System.IO.Path.Combine(AppContext.BaseDirectory, "fixtures") : env;
        }
    }

    public static FixtureFile Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new InvalidDataException($"{path}: shorter than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8)) throw new InvalidDataException($"{path}: header length {headerLength} beyond end of file");
        int dataStart = 8 + (int)headerLength;
        using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength));

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (doc.RootElement.TryGetProperty("__metadata__", out var meta))
            foreach (var p in meta.EnumerateObject()) metadata[p.Name] = p.Value.GetString() ?? "";
        var file = new FixtureFile(path, metadata);

        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            var dtype = entry.Value.GetProperty("dtype").GetString();
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            long numel = shape.Aggregate(1L, (a, b) => a * b);
            int size = dtype switch
            {
                "F32" => 4,
                "I64" => 8,
                _ => throw new InvalidDataException($"{path}: tensor '{entry.Name}' has dtype {dtype}; fixtures hold F32 and I64 only"),
            };
            if (offsets.Length != 2 || offsets[1] - offsets[0] != numel * size || dataStart + offsets[1] > bytes.Length)
                throw new InvalidDataException($"{path}: tensor '{entry.Name}' data_offsets [{string.Join(", ", offsets)}] do not fit shape {Tensor.FormatShape(shape)} × {size} bytes");
            // Little-endian on disk; MemoryMarshal.Cast would assume the host order, so decode explicitly.
            var span = bytes.AsSpan(dataStart + (int)offsets[0], (int)(numel * size));
            if (dtype == "F32")
            {
                var values = new float[numel];
                for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(i * 4)..]);
                file._tensors[entry.Name] = new HostTensor(shape, values, null);
            }
            else
            {
                var values = new long[numel];
                for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadInt64LittleEndian(span[(i * 8)..]);
                file._tensors[entry.Name] = new HostTensor(shape, null, values);
            }
        }
        return file;
    }
}

/// <summary>One entry of the fixture's "cases" metadata.</summary>
internal sealed record FixtureCase(string Name, string Op, string[] Inputs, JsonElement Attrs, int Outputs, string[] Grads)
{
    public static IReadOnlyList<FixtureCase> Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateArray().Select(c => new FixtureCase(
            c.GetProperty("name").GetString()!,
            c.GetProperty("op").GetString()!,
            c.GetProperty("inputs").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            c.TryGetProperty("attrs", out var a) ? a.Clone() : default,
            c.GetProperty("outputs").GetInt32(),
            c.GetProperty("grads").EnumerateArray().Select(e => e.GetString()!).ToArray())).ToList();
    }

    public string OutputName(int k) => Outputs == 1 ? $"{Name}.out" : $"{Name}.out.{k}";

    public string GoutName(int k) => Outputs == 1 ? $"{Name}.gout" : $"{Name}.gout.{k}";

    public bool Bool(string key) => Attrs.GetProperty(key).GetBoolean();
    public int Int(string key) => Attrs.GetProperty(key).GetInt32();
    public float Float(string key) => (float)Attrs.GetProperty(key).GetDouble();
    public bool Has(string key) => Attrs.ValueKind == JsonValueKind.Object && Attrs.TryGetProperty(key, out _);
    public int[] Ints(string key) => Attrs.GetProperty(key).EnumerateArray().Select(e => e.GetInt32()).ToArray();
    public string Str(string key) => Attrs.GetProperty(key).GetString()!;
}
