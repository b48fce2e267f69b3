using System.Buffers.Binary;
using System.Text;
using NativeReasoner.Model.Gguf;
using Xunit;

namespace NativeReasoner.Tests.Gguf;

/// <summary>GGUF container: write → read gives the same metadata and tensor bytes; malformed files name the
/// field.</summary>
public sealed class GgufContainerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "nr-gguf-" + Guid.NewGuid().ToString("N"));

    public GgufContainerTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void WriteThenRead_GivesIdenticalMetadataAndTensors()
    {
        string path = Path.Combine(_dir, "rt.gguf");
        var metadata = GgufTestFiles.EveryValueType();
        var tensors = GgufTestFiles.Tensors();
        var expected = tensors.Select(t =>
        {
            using var ms = new MemoryStream();
            t.WriteData(ms);
            return ms.ToArray();
        }).ToList();
        GgufWriter.Write(path, metadata, tensors);

        using var f = GgufFile.Open(path);
        Assert.Equal(3u, f.Version);
        Assert.Equal(64u, f.Alignment);
        Assert.Equal(metadata.Count, f.Metadata.Count);
        for (int i = 0; i < metadata.Count; i++)
        {
            Assert.Equal(metadata.Entries[i].Key, f.Metadata.Entries[i].Key);
            Assert.Equal(metadata.Entries[i].Value, f.Metadata.Entries[i].Value);
        }
        Assert.Equal(ulong.MaxValue - 3, (ulong)f.Metadata.Entries.Single(e => e.Key == "t.u64").Value.Value);
        Assert.Equal(Math.PI, f.Metadata.GetNumber("t.f64"));
        Assert.Equal(new[] { "a", "", "Ġthe", "<|im_end|>" },
            f.Metadata.GetArray<string>("a.string", GgufValueType.String));
        Assert.Equal(tensors.Count, f.Tensors.Count);
        for (int i = 0; i < tensors.Count; i++)
        {
            var info = f.Tensors[i];
            Assert.Equal(tensors[i].Name, info.Name);
            Assert.Equal(tensors[i].Type, info.Type);
            Assert.Equal(tensors[i].Shape, info.Shape);
            Assert.Equal(0, info.DataOffset % 64);
            Assert.Equal(expected[i], f.GetBytes(info.Name).ToArray());
        }
        // ggml's ne order is the row-major shape reversed.
        Assert.Equal(new long[] { 32, 3, 2 }, f.GetTensor("blk.0.ffn_up.weight").Dimensions);
    }

    [Fact]
    public void TypedGetters_NameTheKeyAndTheExpectedType()
    {
        var m = GgufTestFiles.EveryValueType();
        var e = Assert.Throws<GgufException>(() => m.GetString("t.u32"));
        Assert.Contains("'t.u32'", e.Message);
        Assert.Contains("expected a string", e.Message);
        e = Assert.Throws<GgufException>(() => m.GetCount("llama.block_count"));
        Assert.Contains("'llama.block_count'", e.Message);
        Assert.Contains("missing", e.Message);
        e = Assert.Throws<GgufException>(() => m.GetCount("t.i8"));
        Assert.Contains("in [1, ", e.Message);
        Assert.Equal(new[] { 1, 1, 3, 6 }, m.GetIntegerArray("a.i32"));
        Assert.Throws<GgufException>(() => m.GetIntegerArray("a.u64")); // 2^64-1 does not fit
    }

    private string WriteBytes(byte[] b)
    {
        string p = Path.Combine(_dir, "bad-" + Guid.NewGuid().ToString("N") + ".gguf");
        File.WriteAllBytes(p, b);
        return p;
    }

    private GgufException Rejected(byte[] b) =>
        Assert.Throws<GgufException>(() => GgufFile.Open(WriteBytes(b)).Dispose());

    /// <summary>A header with the given counts followed by <paramref name="rest"/>.</summary>
    private static byte[] Header(ulong tensors, ulong kvs, byte[] rest, uint version = 3, uint magic = GgufFormat.Magic)
    {
        var b = new byte[24 + rest.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(b, magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), version);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), tensors);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), kvs);
        rest.CopyTo(b, 24);
        return b;
    }

    private static byte[] Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        var b = new byte[8 + bytes.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)bytes.Length);
        bytes.CopyTo(b, 8);
        return b;
    }

    private static byte[] U32(uint v) => BitConverter.GetBytes(v);
    private static byte[] U64(ulong v) => BitConverter.GetBytes(v);
    private static byte[] Cat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    [Fact]
    public void Malformed_HeaderFields_AreNamed()
    {
        Assert.Contains("header", Rejected(new byte[10]).Message);
        Assert.Contains("magic", Rejected(Header(0, 0, [], magic: 0x12345678)).Message);
        Assert.Contains("version", Rejected(Header(0, 0, [], version: 1)).Message);
        var e = Rejected(Header(0, 1UL << 60, new byte[16]));
        Assert.Contains("metadata_kv_count", e.Message);
        Assert.Contains("corrupt or truncated", e.Message);
        Assert.Contains("tensor_count", Rejected(Header(ulong.MaxValue, 0, [])).Message);
        using (var ok = GgufFile.Open(WriteBytes(Header(0, 0, []))))
            Assert.Empty(ok.Tensors);
    }

    [Fact]
    public void Malformed_MetadataValues_AreNamed()
    {
        var e = Rejected(Header(0, 1, Cat(Str("general.name"), U32(8), U64(1UL << 40))));
        Assert.Contains("'general.name'", e.Message);
        Assert.Contains("string length", e.Message);
        e = Rejected(Header(0, 1, Cat(Str("x.y"), U32(13), U64(0))));
        Assert.Contains("'x.y'", e.Message);
        Assert.Contains("value type is 13", e.Message);
        e = Rejected(Header(0, 1, Cat(Str("tokenizer.ggml.tokens"), U32(9), U32(8), U64(1UL << 50))));
        Assert.Contains("'tokenizer.ggml.tokens' (array length)", e.Message);
        e = Rejected(Header(0, 1, Cat(Str("flag"), U32(7), [2])));
        Assert.Contains("bool byte is 2", e.Message);
        e = Rejected(Header(0, 2, Cat(Str("k"), U32(4), U32(1), Str("k"), U32(4), U32(1))));
        Assert.Contains("appears twice", e.Message);
        e = Rejected(Header(0, 1, Cat(Str("general.alignment"), U32(4), U32(24))));
        Assert.Contains("power of two", e.Message);
        e = Rejected(Header(0, 1, Cat(Str("bad.utf8"), U32(8), U64(2), [0xC3, 0x28])));
        Assert.Contains("UTF-8", e.Message);
        // Truncated inside a value.
        e = Rejected(Header(0, 1, Cat(Str("t"), U32(10), U32(0))));
        Assert.Contains("'t'", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    private static byte[] TensorInfo(string name, ulong[] ne, uint type, ulong offset) =>
        Cat(Str(name), U32((uint)ne.Length), Cat(ne.Select(U64).ToArray()), U32(type), U64(offset));

    /// <summary>One tensor info, padded to 32, then <paramref name="dataBytes"/> data bytes.</summary>
    private static byte[] OneTensor(byte[] info, int dataBytes, byte[]? second = null)
    {
        var head = Header(second is null ? 1UL : 2UL, 0, second is null ? info : Cat(info, second));
        int padded = (head.Length + 31) / 32 * 32;
        return Cat(head, new byte[padded - head.Length + dataBytes]);
    }

    [Fact]
    public void Malformed_TensorInfos_AreNamed()
    {
        using (var ok = GgufFile.Open(WriteBytes(OneTensor(TensorInfo("w", [4, 2], 0, 0), 32))))
            Assert.Equal(new long[] { 2, 4 }, ok.GetTensor("w").Shape);
        var e = Rejected(OneTensor(TensorInfo("w", [4, 2], 0, 0), 31));
        Assert.Contains("tensor 'w'", e.Message);
        Assert.Contains("runs past the end", e.Message);
        e = Rejected(OneTensor(TensorInfo("w", [4, 2], 99, 0), 64));
        Assert.Contains("type is 99", e.Message);
        e = Rejected(OneTensor(TensorInfo("w", [4, 2], 0, 16), 64));
        Assert.Contains("not a multiple of the alignment 32", e.Message);
        e = Rejected(OneTensor(TensorInfo("w", [4, 2], 0, 1UL << 62), 64));
        Assert.Contains("beyond the end", e.Message);
        e = Rejected(OneTensor(TensorInfo("w", [48, 1], (uint)GgmlType.Q8_0, 0), 64));
        Assert.Contains("not a multiple of Q8_0's block of 32", e.Message);
        e = Rejected(OneTensor(TensorInfo("w", [1, 1, 1, 1, 1], 0, 0), 64));
        Assert.Contains("n_dimensions is 5", e.Message);
        e = Rejected(OneTensor(TensorInfo("w", [0], 0, 0), 64));
        Assert.Contains("dimension 0 is 0", e.Message);
        e = Rejected(OneTensor(TensorInfo("w", [1UL << 30, 1UL << 30, 1UL << 30], 0, 0), 64));
        Assert.Contains("more than", e.Message);
        e = Rejected(OneTensor(TensorInfo("a", [8], 0, 0), 64, TensorInfo("b", [8], 0, 0)));
        Assert.Contains("overlaps tensor", e.Message);
        e = Rejected(OneTensor(TensorInfo("a", [8], 0, 0), 64, TensorInfo("a", [8], 0, 32)));
        Assert.Contains("appears twice", e.Message);
    }

    [Fact]
    public void Writer_RejectsBytesThatDoNotMatchTheTypeAndShape()
    {
        var e = Assert.Throws<GgufException>(() => GgufWriter.Write(Path.Combine(_dir, "w.gguf"), new GgufMetadata(),
            [GgufTensorSource.FromBytes("w", GgmlType.Q8_0, [2, 32], new byte[60])]));
        Assert.Contains("takes 68", e.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "w.gguf")));
    }
}
