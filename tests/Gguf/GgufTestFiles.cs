using System.Runtime.InteropServices;
using NativeReasoner.Model.Gguf;

namespace NativeReasoner.Tests.Gguf;

/// <summary>Small valid GGUF files for the container tests.</summary>
internal static class GgufTestFiles
{
    /// <summary>Metadata with a value of every type, arrays of every item type and a nested array.</summary>
    public static GgufMetadata EveryValueType()
    {
        var m = new GgufMetadata();
        m.Add("general.architecture", "llama");
        m.Add("general.alignment", GgufValue.Of(64u));
        m.Add("t.u8", GgufValue.Of((byte)200));
        m.Add("t.i8", GgufValue.Of((sbyte)-100));
        m.Add("t.u16", GgufValue.Of((ushort)65000));
        m.Add("t.i16", GgufValue.Of((short)-32000));
        m.Add("t.u32", GgufValue.Of(4_000_000_000u));
        m.Add("t.i32", GgufValue.Of(-2_000_000_000));
        m.Add("t.f32", GgufValue.Of(1.5e-6f));
        m.Add("t.bool", GgufValue.Of(true));
        m.Add("t.string", GgufValue.Of("héllo {{ bos_token }}\n😀"));
        m.Add("t.u64", GgufValue.Of(ulong.MaxValue - 3));
        m.Add("t.i64", GgufValue.Of(long.MinValue + 5));
        m.Add("t.f64", GgufValue.Of(Math.PI));
        m.Add("a.u8", new GgufArray(GgufValueType.UInt8, new byte[] { 1, 2, 255 }));
        m.Add("a.i8", new GgufArray(GgufValueType.Int8, new sbyte[] { -1, 2 }));
        m.Add("a.u16", new GgufArray(GgufValueType.UInt16, new ushort[] { 7 }));
        m.Add("a.i16", new GgufArray(GgufValueType.Int16, new short[] { -7, 8 }));
        m.Add("a.u32", GgufArray.Of(new uint[] { 1, 4_000_000_000u }));
        m.Add("a.i32", GgufArray.Of(new[] { 1, 1, 3, 6 }));
        m.Add("a.f32", GgufArray.Of(new[] { 0.5f, -0f, float.MaxValue }));
        m.Add("a.bool", new GgufArray(GgufValueType.Bool, new[] { true, false, true }));
        m.Add("a.string", GgufArray.Of(new[] { "a", "", "Ġthe", "<|im_end|>" }));
        m.Add("a.u64", new GgufArray(GgufValueType.UInt64, new ulong[] { 0, ulong.MaxValue }));
        m.Add("a.i64", new GgufArray(GgufValueType.Int64, new long[] { -1 }));
        m.Add("a.f64", new GgufArray(GgufValueType.Float64, new[] { 1e300, -2.5 }));
        m.Add("a.empty", GgufArray.Of(Array.Empty<string>()));
        m.Add("a.nested", new GgufArray(GgufValueType.Array, new[]
        {
            GgufArray.Of(new[] { 1, 2 }), GgufArray.Of(new[] { "x" }),
        }));
        return m;
    }

    public static float[] Floats(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
    }

    public static byte[] Bytes<T>(T[] values) where T : struct => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    /// <summary>A file with F32, F16, BF16 and Q8_0 tensors (the Q8_0 bytes are arbitrary blocks).</summary>
    public static List<GgufTensorSource> Tensors()
    {
        var rng = new Random(3);
        var f16 = Floats(6 * 5, 2).Select(f => BitConverter.HalfToUInt16Bits((Half)f)).ToArray();
        var bf16 = Floats(7, 4).Select(f => (ushort)(BitConverter.SingleToUInt32Bits(f) >> 16)).ToArray();
        var q8 = new byte[2 * 3 * 34];
        rng.NextBytes(q8);
        return
        [
            GgufTensorSource.FromBytes("token_embd.weight", GgmlType.F32, [3, 4], Bytes(Floats(12, 1))),
            GgufTensorSource.FromBytes("blk.0.attn_q.weight", GgmlType.F16, [6, 5], Bytes(f16)),
            GgufTensorSource.FromBytes("output_norm.weight", GgmlType.BF16, [7], Bytes(bf16)),
            GgufTensorSource.FromBytes("blk.0.ffn_up.weight", GgmlType.Q8_0, [2, 3, 32], q8),
        ];
    }

    public static byte[] ValidFileBytes(string dir)
    {
        string path = Path.Combine(dir, "valid.gguf");
        GgufWriter.Write(path, EveryValueType(), Tensors());
        return File.ReadAllBytes(path);
    }
}
