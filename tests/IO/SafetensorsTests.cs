using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using Xunit;

namespace NativeReasoner.Tests.IO;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir;

    public SafetensorsTests()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nr-st-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    // ---------- helpers ----------

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>Builds a file: u64 LE header length (or an override), header text, data bytes.</summary>
    private static byte[] Craft(string header, byte[]? data = null, ulong? lengthOverride = null)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        data ??= [];
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengthOverride ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        return bytes;
    }

    private string WriteRaw(byte[] bytes, string name = "t.safetensors")
    {
        string p = PathOf(name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    /// <summary>Opening must fail with SafetensorsException whose message contains every fragment.</summary>
    private static SafetensorsException AssertOpenFails(string path, params string[] fragments)
    {
        var ex = Assert.Throws<SafetensorsException>(() => { using var f = SafetensorsFile.Open(path); });
        Assert.Equal(path, ex.FilePath);
        foreach (string frag in fragments) Assert.Contains(frag, ex.Message);
        return ex;
    }

    private static byte[] Bytes<T>(params T[] values) where T : struct => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static string Entry(string name, string dtype, string shape, string offsets) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}";

    // ---------- round trips ----------

    [Fact]
    public void RoundTrip_AllDtypes_Metadata_ZeroSize_Scalar()
    {
        float[] f32 = [1f, -2f, 3.5f, float.MaxValue, float.NegativeInfinity, 0f];
        Half[] f16 = [(Half)1f, (Half)(-2.5f), (Half)65504f];
        ushort[] bf16 = [0x3F80, 0x4049, 0xC000, 0x0000];
        int[] i32 = [int.MinValue, -1, 0, 1, int.MaxValue];
        long[] i64 = [long.MinValue, -7, 42, long.MaxValue];
        var tensors = new List<SafetensorsTensor>
        {
            new("f32", DType.Float32, [2, 3], Bytes(f32)),
            new("f16", DType.Float16, [3], Bytes(f16)),
            new("bf16", DType.BFloat16, [2, 1, 2], Bytes(bf16)),
            new("i32", DType.Int32, [5], Bytes(i32)),
            new("i64", DType.Int64, [4], Bytes(i64)),
            new("empty", DType.Float32, [3, 0, 2], Array.Empty<byte>()),
            new("scalar", DType.Float32, [], Bytes(7.25f)),
        };
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode ✓ \"quoted\"" };
        string p = PathOf("rt.safetensors");
        SafetensorsWriter.Write(p, tensors, meta);

        using var f = SafetensorsFile.Open(p);
        Assert.Equal(meta, f.Metadata);
        Assert.Equal(tensors.Count, f.Entries.Count);
        foreach (SafetensorsTensor t in tensors)
        {
            SafetensorsEntry e = f.GetEntry(t.Name);
            Assert.Equal(t.DType, e.DType);
            Assert.Equal(t.Shape, e.Shape);
            Assert.Equal(t.Data.Length, e.ByteLength);
            Assert.True(f.GetBytes(t.Name).SequenceEqual(t.Data.Span));
            // Natural alignment: the writer orders data so each tensor's offset is a multiple of its element size.
            Assert.Equal(0, e.DataOffset % t.DType.SizeOf());
        }
        Assert.Equal(f32, f.ReadFloat32("f32"));
        Assert.Equal(i64, f.ReadInt64("i64"));
        Assert.Equal(i32.Select(x => (long)x).ToArray(), f.ReadInt64("i32"));
        Assert.Equal(0, f.GetEntry("empty").ElementCount);
        Assert.Empty(f.ReadFloat32("empty"));
        Assert.Equal(1, f.GetEntry("scalar").ElementCount);
        Assert.Equal([7.25f], f.ReadFloat32("scalar"));
        // Entries are in data order: offsets never decrease.
        for (int i = 1; i < f.Entries.Count; i++) Assert.True(f.Entries[i].DataOffset >= f.Entries[i - 1].DataOffset);

        var copy = new byte[f.GetEntry("i64").ByteLength];
        f.CopyTo("i64", copy);
        Assert.Equal(Bytes(i64), copy);
        unsafe
        {
            byte* ptr = f.GetPointer("i32");
            Assert.Equal(int.MinValue, *(int*)ptr);
        }
    }

    [Fact]
    public void HandBuiltFile_ParsesExactly()
    {
        // Header and data assembled byte by byte, independent of the writer.
        string header = "{\"__metadata__\":{\"k\":\"v\"},\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]}," +
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        byte[] data =
        [
            0x00, 0x00, 0x80, 0x3F, // 1.0f
            0x00, 0x00, 0x20, 0xC0, // -2.5f
            0x2A, 0x00, 0x00, 0x00, // 42
        ];
        byte[] hb = Encoding.ASCII.GetBytes(header);
        var file = new List<byte>();
        ulong n = (ulong)hb.Length;
        for (int i = 0; i < 8; i++) file.Add((byte)(n >> (8 * i)));
        file.AddRange(hb);
        file.AddRange(data);
        string p = WriteRaw(file.ToArray());

        using var f = SafetensorsFile.Open(p);
        Assert.Equal(file.Count, f.Length);
        Assert.Equal("v", f.Metadata["k"]);
        Assert.Equal(["a", "b"], f.Entries.Select(e => e.Name));
        SafetensorsEntry a = f.Entries[0], b = f.Entries[1];
        Assert.Equal(new SafetensorsEntry("a", DType.Float32, a.Shape, 8 + hb.Length, 8, 2), a);
        Assert.Equal([2L], a.Shape);
        Assert.Equal(8 + hb.Length + 8, b.DataOffset);
        Assert.Equal([1f, -2.5f], f.ReadFloat32("a"));
        Assert.Equal([42L], f.ReadInt64("b"));
    }

    [Fact]
    public void Writer_ProducesExpectedBytes()
    {
        string p = PathOf("w.safetensors");
        SafetensorsWriter.Write(p,
        [
            new("z", DType.Float16, [1], new byte[] { 0x00, 0x3C }),
            new("a", DType.Float32, [1], new byte[] { 0x00, 0x00, 0x80, 0x3F }),
        ], new Dictionary<string, string> { ["format"] = "pt" });

        // Keys sorted, metadata first; 4-byte tensor before the 2-byte one in the data section.
        string json = "{\"__metadata__\":{\"format\":\"pt\"}," +
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," +
                      "\"z\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[4,6]}}";
        int padded = (json.Length + 7) / 8 * 8;
        json = json.PadRight(padded, ' ');
        byte[] expected = Craft(json, [0x00, 0x00, 0x80, 0x3F, 0x00, 0x3C]);
        Assert.Equal(expected, File.ReadAllBytes(p));
        Assert.Equal(0, BinaryPrimitives.ReadInt64LittleEndian(expected) % 8);
    }

    [Fact]
    public void HalfAndBFloat16_ConvertToKnownFloats()
    {
        byte[] f16 = [0x00, 0x3C, 0x00, 0xC1, 0xFF, 0x7B]; // 1.0, -2.5, 65504
        byte[] bf16 = [0x80, 0x3F, 0x49, 0x40];             // 1.0, 3.140625
        string header = "{" + Entry("h", "F16", "[3]", "[0,6]") + "," + Entry("b", "BF16", "[2]", "[6,10]") + "}";
        string p = WriteRaw(Craft(header, [.. f16, .. bf16]));
        using var f = SafetensorsFile.Open(p);
        Assert.Equal([1.0f, -2.5f, 65504f], f.ReadFloat32("h"));
        Assert.Equal([1.0f, 3.140625f], f.ReadFloat32("b"));
        var dst = new float[2];
        f.ReadFloat32("b", dst);
        Assert.Equal([1.0f, 3.140625f], dst);
    }

    [Fact]
    public void BFloat16_LongTensor_MatchesScalarWidening()
    {
        // Long enough to exercise the SIMD path plus a scalar tail; covers sign, Inf, NaN, subnormals.
        var rng = new Random(1234);
        ushort[] bits = new ushort[1003];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)rng.Next(0, 65536);
        bits[0] = 0x7F80; bits[1] = 0xFF80; bits[2] = 0x7FC1; bits[3] = 0x0001; bits[4] = 0x8000;
        Half[] halves = bits.Select(b => BitConverter.UInt16BitsToHalf(b)).ToArray();
        string p = PathOf("bf.safetensors");
        SafetensorsWriter.Write(p,
        [
            new("b", DType.BFloat16, [bits.Length], Bytes(bits)),
            new("h", DType.Float16, [bits.Length], Bytes(halves)),
        ]);
        using var f = SafetensorsFile.Open(p);
        float[] b = f.ReadFloat32("b"), h = f.ReadFloat32("h");
        for (int i = 0; i < bits.Length; i++)
        {
            Assert.Equal((uint)bits[i] << 16, BitConverter.SingleToUInt32Bits(b[i]));
            Assert.Equal(((float)halves[i]).ToString("R"), h[i].ToString("R"));
        }
    }

    [Fact]
    public void TypedReads_RejectWrongDtype()
    {
        string header = "{" + Entry("i", "I32", "[1]", "[0,4]") + "," + Entry("x", "F32", "[1]", "[4,8]") + "}";
        using var f = SafetensorsFile.Open(WriteRaw(Craft(header, new byte[8])));
        var e1 = Assert.Throws<SafetensorsException>(() => f.ReadFloat32("i"));
        Assert.Equal("i", e1.TensorName);
        Assert.Contains("I32", e1.Message);
        var e2 = Assert.Throws<SafetensorsException>(() => f.ReadInt64("x"));
        Assert.Contains("F32", e2.Message);
        Assert.Throws<ArgumentException>(() => f.CopyTo("x", new byte[3]));
    }

    [Fact]
    public void Dispose_UnmapsAndLaterAccessThrows()
    {
        string p = WriteRaw(Craft("{" + Entry("x", "F32", "[1]", "[0,4]") + "}", new byte[4]));
        var f = SafetensorsFile.Open(p);
        f.Dispose();
        f.Dispose(); // Idempotent.
        Assert.Throws<ObjectDisposedException>(() => f.GetBytes("x").Length);
        // Deterministic unmap: the file can be replaced/deleted right away.
        File.Delete(p);
        Assert.False(File.Exists(p));
    }

    // ---------- truncation and header length ----------

    [Fact]
    public void TooShortOrMissingFile_Fails()
    {
        AssertOpenFails(WriteRaw([], "empty.safetensors"), "0 bytes", "too short");
        AssertOpenFails(WriteRaw([1, 2, 3], "three.safetensors"), "3 bytes", "too short");
        AssertOpenFails(PathOf("nope.safetensors"), "cannot open");
    }

    [Fact]
    public void TruncatedInHeader_Fails()
    {
        byte[] full = Craft("{" + Entry("x", "F32", "[2]", "[0,8]") + "}", new byte[8]);
        string p = WriteRaw(full.AsSpan(0, 20).ToArray());
        AssertOpenFails(p, "header length", "larger than", "truncated");
    }

    [Fact]
    public void TruncatedInData_Fails()
    {
        byte[] full = Craft("{" + Entry("x", "F32", "[2]", "[0,8]") + "}", new byte[8]);
        string p = WriteRaw(full.AsSpan(0, full.Length - 3).ToArray());
        var ex = AssertOpenFails(p, "'x'", "beyond the data section", "5 bytes");
        Assert.Equal("x", ex.TensorName);
    }

    [Fact]
    public void HeaderLengthZero_Fails() =>
        AssertOpenFails(WriteRaw(Craft("{}", lengthOverride: 0)), "header length is 0");

    [Theory]
    [InlineData(9223372036854775807UL)]
    [InlineData(1UL << 40)]
    [InlineData(ulong.MaxValue)]
    public void HeaderLengthHuge_Fails(ulong length) =>
        AssertOpenFails(WriteRaw(Craft("{}", lengthOverride: length)), $"header length {length}", "limit");

    [Fact]
    public void HeaderLengthBiggerThanFile_Fails() =>
        AssertOpenFails(WriteRaw(Craft("{}", lengthOverride: 3)), "header length 3", "larger than the 2 bytes");

    // ---------- JSON structure ----------

    [Theory]
    [InlineData("{\"x\": {\"dtype\": \"F32\",", "not valid JSON")]
    [InlineData("not json at all", "not valid JSON")]
    [InlineData("[1, 2, 3]", "must be a JSON object but is an array")]
    [InlineData("\"str\"", "must be a JSON object but is a string")]
    [InlineData("{\"x\": 5}", "entry must be a JSON object")]
    [InlineData("{\"x\": {\"shape\": [], \"data_offsets\": [0,0]}}", "missing 'dtype'")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"data_offsets\": [0,0]}}", "missing 'shape'")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": []}}", "missing 'data_offsets'")]
    [InlineData("{\"x\": {\"dtype\": 3, \"shape\": [], \"data_offsets\": [0,4]}}", "dtype must be a string")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0,4]}}", "shape must be an array")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0,4]}}", "shape[0] = 1.5 is not a non-negative integer")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0,4]}}", "shape[0] = \"1\"")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", "two integers")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", "two integers")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", "begin = -4")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.0]}}", "end = 4.0")]
    [InlineData("{\"__metadata__\": {\"a\": 1}}", "__metadata__ value for key 'a' must be a string")]
    [InlineData("{\"__metadata__\": [\"a\"]}", "__metadata__ must be an object")]
    [InlineData("{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0,4]}, \"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4,8]}}", "more than once")]
    public void MalformedHeader_Fails(string header, string expected)
    {
        // Pad data generously so only the header problem can trigger.
        AssertOpenFails(WriteRaw(Craft(header, new byte[16])), expected);
    }

    [Fact]
    public void InvalidUtf8Header_Fails()
    {
        byte[] bytes = Craft("{\"x\":\"ab\"}");
        bytes[8 + 6] = 0xC3; // Lead byte without continuation.
        bytes[8 + 7] = 0x28;
        AssertOpenFails(WriteRaw(bytes), "not valid UTF-8");
    }

    [Fact]
    public void DeeplyNestedHeader_FailsCleanly()
    {
        string deep = "{\"x\":" + new string('[', 10_000) + new string(']', 10_000) + "}";
        AssertOpenFails(WriteRaw(Craft(deep)), "not valid JSON");
    }

    [Theory]
    [InlineData("F64")]
    [InlineData("U16")]
    [InlineData("BOOL")]
    [InlineData("I8")]
    [InlineData("F8_E5M2")]
    [InlineData("f32")]
    public void UnknownDtype_Fails(string dtype)
    {
        var ex = AssertOpenFails(WriteRaw(Craft("{" + Entry("w", dtype, "[1]", "[0,8]") + "}", new byte[8])),
            "tensor 'w'", $"unsupported dtype '{dtype}'");
        Assert.Equal("w", ex.TensorName);
    }

    [Fact]
    public void NegativeShapeDim_Fails() =>
        AssertOpenFails(WriteRaw(Craft("{" + Entry("w", "F32", "[2, -1]", "[0,8]") + "}", new byte[8])),
            "tensor 'w'", "shape[1] = -1");

    [Fact]
    public void ShapeProductOverflow_Fails() =>
        AssertOpenFails(WriteRaw(Craft("{" + Entry("w", "F32", "[4294967296, 4294967296]", "[0,8]") + "}", new byte[8])),
            "tensor 'w'", "overflows");

    [Fact]
    public void ShapeByteCountOverflow_Fails() =>
        // Element count fits a long; × 4 bytes does not.
        AssertOpenFails(WriteRaw(Craft("{" + Entry("w", "F32", "[4611686018427387904]", "[0,8]") + "}", new byte[8])),
            "tensor 'w'", "overflows");

    [Fact]
    public void OffsetsEndBeforeBegin_Fails() =>
        AssertOpenFails(WriteRaw(Craft("{" + Entry("w", "F32", "[1]", "[8,4]") + "}", new byte[16])),
            "tensor 'w'", "[8, 4] end is before begin");

    [Theory]
    [InlineData("[0, 18446744073709551615]", "end = 18446744073709551615 is not an integer")]
    [InlineData("[18446744073709551615, 18446744073709551615]", "begin = 18446744073709551615 is not an integer")]
    [InlineData("[0, 9223372036854775807]", "beyond the data section")]
    [InlineData("[9223372036854775807, 9223372036854775807]", "beyond the data section")]
    [InlineData("[9223372036854775800, 9223372036854775807]", "beyond the data section")]
    [InlineData("[0, 99999999999999999999999999999]", "is not an integer")]
    public void OffsetsOverflow_Fails(string offsets, string expected) =>
        AssertOpenFails(WriteRaw(Craft("{" + Entry("w", "F32", "[1]", offsets) + "}", new byte[8])),
            "tensor 'w'", expected);

    [Fact]
    public void OffsetsBeyondFile_Fails() =>
        AssertOpenFails(WriteRaw(Craft("{" + Entry("w", "F32", "[4]", "[8,24]") + "}", new byte[16])),
            "tensor 'w'", "[8, 24] extend beyond the data section (16 bytes)");

    [Fact]
    public void OverlappingTensors_Fail()
    {
        string header = "{" + Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("b", "F32", "[2]", "[4,12]") + "}";
        var ex = AssertOpenFails(WriteRaw(Craft(header, new byte[12])), "overlaps", "'a'", "'b'");
        Assert.Equal("b", ex.TensorName);
    }

    [Fact]
    public void ZeroSizeTensorInsideAnotherRange_IsNotOverlap()
    {
        string header = "{" + Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("e", "F32", "[0]", "[4,4]") + "}";
        using var f = SafetensorsFile.Open(WriteRaw(Craft(header, new byte[8])));
        Assert.Equal(0, f.GetEntry("e").ByteLength);
    }

    [Fact]
    public void ByteLengthMismatch_Fails()
    {
        string p = WriteRaw(Craft("{" + Entry("x.weight", "F32", "[2, 2]", "[0,12]") + "}", new byte[16]));
        var ex = AssertOpenFails(p, $"{p}: tensor 'x.weight': data_offsets [0, 12] hold 12 bytes but F32 × [2, 2] needs 16");
        Assert.Equal("x.weight", ex.TensorName);
    }

    [Fact]
    public void MissingTensorLookup_NamesFileTensorAndAlternatives()
    {
        string header = "{" + Entry("layer.0.weight", "F32", "[1]", "[0,4]") + "," + Entry("layer.0.bias", "F32", "[1]", "[4,8]") + "}";
        string p = WriteRaw(Craft(header, new byte[8]));
        using var f = SafetensorsFile.Open(p);
        Assert.False(f.Contains("layer.1.weight"));
        var ex = Assert.Throws<SafetensorsException>(() => f.GetEntry("layer.1.weight"));
        Assert.Equal(p, ex.FilePath);
        Assert.Equal("layer.1.weight", ex.TensorName);
        Assert.Contains("no such tensor", ex.Message);
        Assert.Contains("'layer.0.weight'", ex.Message);
        Assert.Throws<SafetensorsException>(() => f.ReadFloat32("missing"));
        Assert.Throws<SafetensorsException>(() => f.GetBytes("missing").Length);
    }

    // ---------- writer validation & atomicity ----------

    private string[] TempFiles() => Directory.GetFiles(_dir, "*.tmp-*");

    [Fact]
    public void Writer_DuplicateNames_ThrowsLeavesTargetUntouchedAndNoTempFiles()
    {
        string p = PathOf("m.safetensors");
        SafetensorsWriter.Write(p, [new("x", DType.Float32, [1], Bytes(1f))]);
        byte[] before = File.ReadAllBytes(p);

        var ex = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(p,
            [new("y", DType.Float32, [1], Bytes(2f)), new("y", DType.Float32, [1], Bytes(3f))]));
        Assert.Contains("duplicate tensor name 'y'", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(p));
        Assert.Empty(TempFiles());
    }

    [Fact]
    public void Writer_SizeMismatch_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            SafetensorsWriter.Write(PathOf("s.safetensors"), [new("x", DType.Float32, [2, 2], new byte[12])]));
        Assert.Contains("12 bytes but F32 × [2, 2] needs 16", ex.Message);
        Assert.False(File.Exists(PathOf("s.safetensors")));
        Assert.Empty(TempFiles());
    }

    /// <summary>Memory whose bytes cannot be read: fails after the temp file exists, mid-write.</summary>
    private sealed class ExplodingMemory(int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => throw new IOException("disk on fire");
        public override MemoryHandle Pin(int elementIndex = 0) => throw new NotSupportedException();
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
        public override Memory<byte> Memory => CreateMemory(length);
    }

    [Fact]
    public void Writer_FailureMidWrite_DeletesTempAndKeepsTarget()
    {
        string p = PathOf("m.safetensors");
        SafetensorsWriter.Write(p, [new("x", DType.Float32, [1], Bytes(1f))]);
        byte[] before = File.ReadAllBytes(p);

        using var boom = new ExplodingMemory(8);
        var ex = Assert.Throws<IOException>(() => SafetensorsWriter.Write(p,
            [new("a", DType.Float32, [1], Bytes(5f)), new("b", DType.Float32, [2], boom.Memory)]));
        Assert.Equal("disk on fire", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(p));
        Assert.Empty(TempFiles());
    }

    [Fact]
    public void Writer_OverwritesExistingAtomically_NoTempLeft()
    {
        string p = PathOf("m.safetensors");
        SafetensorsWriter.Write(p, [new("x", DType.Float32, [1], Bytes(1f))]);
        SafetensorsWriter.Write(p, [new("x", DType.Float32, [1], Bytes(2f))]);
        using var f = SafetensorsFile.Open(p);
        Assert.Equal([2f], f.ReadFloat32("x"));
        Assert.Empty(TempFiles());
    }

    // ---------- sharded checkpoints ----------

    private static List<SafetensorsTensor> SampleTensors(int count)
    {
        var list = new List<SafetensorsTensor>();
        for (int i = 0; i < count; i++)
        {
            float[] v = Enumerable.Range(0, 4).Select(j => i * 10f + j).ToArray();
            list.Add(new($"layer.{i}.weight", DType.Float32, [2, 2], Bytes(v)));
        }
        list.Add(new("ids", DType.Int64, [2], Bytes(3L, 4L)));
        return list;
    }

    [Fact]
    public void Checkpoint_ShardedRoundTrip()
    {
        var tensors = SampleTensors(5); // 5 × 16 bytes + 16 bytes.
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        SafetensorsCheckpoint.Write(_dir, tensors, maxShardBytes: 40, metadata: meta);

        // 16+16 | 16+16 | 16+16 → three shards of two tensors each.
        string[] shards = Directory.GetFiles(_dir, "model-*.safetensors").Select(Path.GetFileName).Order().ToArray()!;
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"], shards);
        Assert.True(File.Exists(PathOf(SafetensorsCheckpoint.IndexFileName)));
        Assert.False(File.Exists(PathOf(SafetensorsCheckpoint.SingleFileName)));
        Assert.Empty(TempFiles());

        using var ck = SafetensorsCheckpoint.Open(_dir);
        Assert.Equal(3, ck.Files.Count);
        Assert.Equal("96", ck.Metadata["total_size"]);
        Assert.Equal("pt", ck.Metadata["format"]);
        Assert.Equal(tensors.Select(t => t.Name).Order(StringComparer.Ordinal), ck.Names.Order(StringComparer.Ordinal));
        foreach (SafetensorsTensor t in tensors)
        {
            Assert.True(ck.Contains(t.Name));
            Assert.True(ck.GetBytes(t.Name).SequenceEqual(t.Data.Span));
            Assert.Equal(t.Shape, ck.GetEntry(t.Name).Shape);
        }
        Assert.Equal([30f, 31f, 32f, 33f], ck.ReadFloat32("layer.3.weight"));
        Assert.Equal([3L, 4L], ck.ReadInt64("ids"));
        var ex = Assert.Throws<SafetensorsException>(() => ck.GetEntry("layer.9.weight"));
        Assert.Equal(_dir, ex.FilePath);
        Assert.Contains("layer.9.weight", ex.Message);
    }

    [Fact]
    public void Checkpoint_SingleFileRoundTrip_RemovesStaleIndex()
    {
        var tensors = SampleTensors(3);
        SafetensorsCheckpoint.Write(_dir, tensors, maxShardBytes: 20); // Sharded first...
        SafetensorsCheckpoint.Write(_dir, tensors);                     // ...then single: index must go.
        Assert.False(File.Exists(PathOf(SafetensorsCheckpoint.IndexFileName)));
        using var ck = SafetensorsCheckpoint.Open(_dir);
        Assert.Single(ck.Files);
        Assert.Equal(PathOf(SafetensorsCheckpoint.SingleFileName), ck.Files[0].FilePath);
        Assert.Equal([20f, 21f, 22f, 23f], ck.ReadFloat32("layer.2.weight"));
    }

    [Fact]
    public void Checkpoint_TensorLargerThanShardLimit_GetsOwnShard()
    {
        var tensors = new List<SafetensorsTensor>
        {
            new("small", DType.Float32, [1], Bytes(1f)),
            new("big", DType.Float32, [8], new byte[32]),
            new("small2", DType.Float32, [1], Bytes(2f)),
        };
        SafetensorsCheckpoint.Write(_dir, tensors, maxShardBytes: 8);
        using var ck = SafetensorsCheckpoint.Open(_dir);
        Assert.Equal(3, ck.Files.Count);
        Assert.Equal([2f], ck.ReadFloat32("small2"));
    }

    [Fact]
    public void Checkpoint_IndexPointsToMissingShard_Fails()
    {
        SafetensorsCheckpoint.Write(_dir, SampleTensors(3), maxShardBytes: 20);
        File.Delete(PathOf("model-00002-of-00004.safetensors"));
        var ex = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(_dir));
        Assert.Equal(PathOf(SafetensorsCheckpoint.IndexFileName), ex.FilePath);
        Assert.Contains("model-00002-of-00004.safetensors", ex.Message);
        Assert.Contains("does not exist", ex.Message);
    }

    [Fact]
    public void Checkpoint_IndexNamesTensorShardLacks_Fails()
    {
        SafetensorsWriter.Write(PathOf("model-00001-of-00001.safetensors"), [new("a", DType.Float32, [1], Bytes(1f))]);
        File.WriteAllText(PathOf(SafetensorsCheckpoint.IndexFileName),
            "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\",\"b\":\"model-00001-of-00001.safetensors\"}}");
        var ex = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(_dir));
        Assert.Equal("b", ex.TensorName);
        Assert.Contains("index says the tensor is in shard 'model-00001-of-00001.safetensors' but that shard lacks it", ex.Message);
    }

    [Theory]
    [InlineData("[]", "must be a JSON object")]
    [InlineData("{\"metadata\":{}}", "lacks a 'weight_map'")]
    [InlineData("{\"weight_map\":{\"a\":\"../evil.safetensors\"}}", "not a plain file name")]
    [InlineData("{\"weight_map\":{\"a\":3}}", "must be a shard file name")]
    [InlineData("{\"weight_map\":", "not valid JSON")]
    public void Checkpoint_MalformedIndex_Fails(string index, string expected)
    {
        File.WriteAllText(PathOf(SafetensorsCheckpoint.IndexFileName), index);
        var ex = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(_dir));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Checkpoint_EmptyDirectory_FailsNamingDirectory()
    {
        var ex = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(_dir));
        Assert.Equal(_dir, ex.FilePath);
        Assert.Contains(SafetensorsCheckpoint.IndexFileName, ex.Message);
        Assert.Contains(SafetensorsCheckpoint.SingleFileName, ex.Message);
    }

    [Fact]
    public void Checkpoint_BadShard_ReportsShardFile()
    {
        SafetensorsCheckpoint.Write(_dir, SampleTensors(3), maxShardBytes: 20);
        string shard = PathOf("model-00003-of-00004.safetensors");
        File.WriteAllBytes(shard, Craft("{}", lengthOverride: 0));
        var ex = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(_dir));
        Assert.Equal(shard, ex.FilePath);
    }

    [Fact]
    public void ReleasePages_KeepsEveryByteReadable_AndRejectsRangesOutsideTheTensor()
    {
        // Tensors spanning several pages at unaligned offsets: the released pages are shared with the neighbours.
        string p = PathOf("release.safetensors");
        var a = Enumerable.Range(0, 3001).Select(i => (float)i * 0.5f).ToArray();
        var b = Enumerable.Range(0, 5003).Select(i => -(float)i).ToArray();
        SafetensorsWriter.Write(p,
            [new("a", DType.Float32, [3001], Bytes(a)), new("b", DType.Float32, [5003], Bytes(b))]);
        using var f = SafetensorsFile.Open(p);
        Assert.Equal(a, f.ReadFloat32("a"));
        f.ReleasePages("a");
        f.ReleasePages("b", 4097, 7000);
        f.ReleasePages("b", 20012, 0);
        Assert.Equal(a, f.ReadFloat32("a"));
        Assert.Equal(b, f.ReadFloat32("b"));

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => f.ReleasePages("b", 20000, 13));
        Assert.Contains("'b' (20012 bytes)", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => f.ReleasePages("b", -1, 4));
        Assert.Throws<SafetensorsException>(() => f.ReleasePages("c"));
    }
}
