using System.Runtime.InteropServices;
using System.Text;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using Xunit;

namespace NativeReasoner.Tests.IO;

/// <summary>
/// Random corruptions of valid files and indexes: every outcome must be either a clean open whose every tensor reads
/// back, or a <see cref="SafetensorsException"/>. Any other exception (index out of range, overflow, access
/// violation, JSON exceptions leaking out) fails the test.
/// </summary>
public sealed class SafetensorsFuzzTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "nr-stfuzz-" + Guid.NewGuid().ToString("N"));

    public SafetensorsFuzzTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static byte[] ValidFile(string dir)
    {
        string p = Path.Combine(dir, "valid.safetensors");
        float[] f32 = [1f, -2f, 3.5f, 0.25f, 9f, 10f];
        ushort[] bf16 = [0x3F80, 0x4049, 0xC000, 0x0000];
        SafetensorsWriter.Write(p,
        [
            new("layer.weight", DType.Float8E4M3, [3, 5],
                Enumerable.Range(0, 15).Select(i => (byte)(i * 17)).ToArray()),
            new("layer.weight_scale_inv", DType.Float32, [1, 1], BitConverter.GetBytes(0.5f)),
            new("norm", DType.BFloat16, [4], MemoryMarshal.AsBytes(bf16.AsSpan()).ToArray()),
            new("x", DType.Float32, [2, 3], MemoryMarshal.AsBytes(f32.AsSpan()).ToArray()),
            new("ids", DType.Int64, [2], MemoryMarshal.AsBytes(new long[] { 3, -4 }.AsSpan()).ToArray()),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        return File.ReadAllBytes(p);
    }

    /// <summary>Opens and reads everything; returns false on a SafetensorsException, rethrows anything else.</summary>
    private static bool OpenAndReadAll(string path)
    {
        try
        {
            using var f = SafetensorsFile.Open(path);
            foreach (SafetensorsEntry e in f.Entries)
            {
                // Offsets were validated against the file: every byte must be readable.
                Assert.InRange(e.DataOffset + e.ByteLength, 0, f.Length);
                _ = f.GetBytes(e.Name).ToArray();
                if (e.DType.IsFloating() || e.DType == DType.Float8E4M3) _ = f.ReadFloat32(e.Name);
                else _ = f.ReadInt64(e.Name);
            }
            return true;
        }
        catch (SafetensorsException)
        {
            return false;
        }
    }

    [Fact]
    public void RandomCorruptions_NeverCrashOrReadOutOfBounds()
    {
        byte[] valid = ValidFile(_dir);
        int headerEnd = 8 + (int)BitConverter.ToUInt64(valid, 0);
        var rng = new Random(20261207);
        string path = Path.Combine(_dir, "fuzz.safetensors");
        int opened = 0, rejected = 0;
        for (int iter = 0; iter < 1500; iter++)
        {
            byte[] b = (byte[])valid.Clone();
            switch (iter % 6)
            {
                case 0: // flip a few header bytes (JSON syntax, digits of offsets and shapes, dtype names)
                    for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(8, headerEnd)] = (byte)rng.Next(256);
                    break;
                case 1: // truncate anywhere
                    b = b[..rng.Next(0, b.Length)];
                    break;
                case 2: // a wrong header length
                    BitConverter.TryWriteBytes(b.AsSpan(0, 8), rng.Next(4) switch
                    {
                        0 => (ulong)rng.Next(0, b.Length * 2),
                        1 => ulong.MaxValue - (ulong)rng.Next(1000),
                        2 => (ulong)headerEnd - 8 + (ulong)rng.Next(-8, 8),
                        _ => 1UL << rng.Next(64),
                    });
                    break;
                case 3: // replace a number in the header with an extreme one
                    b = ReplaceNumber(b, headerEnd, rng);
                    break;
                case 4: // garbage in the data section (always valid) plus extra trailing bytes
                    for (int k = 0; k < 8; k++) b[rng.Next(headerEnd, b.Length)] = (byte)rng.Next(256);
                    b = b.Concat(new byte[rng.Next(0, 9)]).ToArray();
                    break;
                default: // splice: swap two header slices
                    int i = rng.Next(8, headerEnd), j = rng.Next(8, headerEnd), n = rng.Next(1, 12);
                    n = Math.Min(n, Math.Min(headerEnd - i, headerEnd - j));
                    byte[] tmp = b.AsSpan(i, n).ToArray();
                    b.AsSpan(j, n).CopyTo(b.AsSpan(i, n));
                    tmp.CopyTo(b.AsSpan(j, n));
                    break;
            }
            File.WriteAllBytes(path, b);
            if (OpenAndReadAll(path)) opened++; else rejected++;
        }
        // Both outcomes occur, so the corruptions really reach the validator.
        Assert.True(rejected > 500, $"only {rejected} of 1500 corruptions were rejected");
        Assert.True(opened > 50, $"only {opened} of 1500 files opened");
    }

    private static byte[] ReplaceNumber(byte[] b, int headerEnd, Random rng)
    {
        string header = Encoding.UTF8.GetString(b, 8, headerEnd - 8);
        var digits = System.Text.RegularExpressions.Regex.Matches(header, "[0-9]+").ToList();
        var m = digits[rng.Next(digits.Count)];
        string[] extremes = ["18446744073709551615", "9223372036854775807", "9223372036854775808", "-1", "1e3", "0",
            "4294967296", "99999999999999999999999", "2.5"];
        string patched = header[..m.Index] + extremes[rng.Next(extremes.Length)] + header[(m.Index + m.Length)..];
        byte[] h = Encoding.UTF8.GetBytes(patched);
        var result = new byte[8 + h.Length + (b.Length - headerEnd)];
        BitConverter.TryWriteBytes(result.AsSpan(0, 8), (ulong)h.Length);
        h.CopyTo(result, 8);
        b.AsSpan(headerEnd).CopyTo(result.AsSpan(8 + h.Length));
        return result;
    }

    [Fact]
    public void RandomIndexCorruptions_FailCleanly()
    {
        var tensors = Enumerable.Range(0, 4)
            .Select(i => new SafetensorsTensor($"t{i}", DType.Float32, [4], new byte[16])).ToList();
        SafetensorsCheckpoint.Write(_dir, tensors, maxShardBytes: 20);
        string indexPath = Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName);
        byte[] index = File.ReadAllBytes(indexPath);
        var rng = new Random(7);
        for (int iter = 0; iter < 400; iter++)
        {
            byte[] b = (byte[])index.Clone();
            if (iter % 2 == 0) for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(b.Length)] = (byte)rng.Next(32, 127);
            else b = b[..rng.Next(b.Length)];
            File.WriteAllBytes(indexPath, b);
            try
            {
                using var ckpt = SafetensorsCheckpoint.Open(_dir);
                foreach (string n in ckpt.Names) _ = ckpt.ReadFloat32(n);
            }
            catch (SafetensorsException)
            {
            }
        }
    }
}
