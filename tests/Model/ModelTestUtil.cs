using NativeReasoner.IO;

namespace NativeReasoner.Tests.Model;

internal static class ModelTestUtil
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    public static float[] ReadF32(string file, string name)
    {
        using var f = SafetensorsFile.Open(file);
        return f.ReadFloat32(name);
    }

    public static (long[] Ids, int B, int T) ReadIds(string file, string name)
    {
        using var f = SafetensorsFile.Open(file);
        var e = f.GetEntry(name);
        return (f.ReadInt64(name), (int)e.Shape[0], (int)e.Shape[1]);
    }

    /// <summary>max |a − b| / max |b| (the error relative to the reference's scale).</summary>
    public static double RelError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"length {actual.Length} vs {expected.Length}");
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (double.IsNaN(d)) return double.PositiveInfinity;
            maxDiff = Math.Max(maxDiff, d);
            maxRef = Math.Max(maxRef, Math.Abs((double)expected[i]));
        }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef;
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-model-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
