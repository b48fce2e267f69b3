using System.Buffers.Binary;
using System.IO.Compression;

namespace NativeReasoner.RL;

/// <summary>
/// Minimal PNG charts for run directories, drawn without a graphics library: line charts of a metric
/// against the step and grouped bar charts by difficulty. No text is drawn: each file's name says what
/// it shows; series colours are blue (first), orange (second), green (third); axes start at 0 (y) and the
/// first step (x); a light grid marks quarters of the y range.
/// </summary>
public static class Plots
{
    private static readonly (byte R, byte G, byte B)[] Colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44)];

    /// <summary>The plots of a <c>nr train</c> run (see the README for the list).</summary>
    public static void WriteRunPlots(string runDir, IReadOnlyList<Dictionary<string, double>> rl, EvalReport before, EvalReport after)
    {
        double[] Series(string key) => rl.Select(m => m.GetValueOrDefault(key, double.NaN)).ToArray();
        File.WriteAllBytes(Path.Combine(runDir, "reward.png"), LineChart([Series("reward"), Series("rewards/accuracy/mean"), Series("rewards/format/mean")]));
        File.WriteAllBytes(Path.Combine(runDir, "heldout_accuracy.png"), LineChart([Series("eval/accuracy")]));
        File.WriteAllBytes(Path.Combine(runDir, "completion_length.png"), LineChart([Series("completions/mean_length")]));
        File.WriteAllBytes(Path.Combine(runDir, "think_rate.png"), LineChart([Series("eval/think_rate"), Series("eval/format")]));
        var levels = before.ByDifficulty.Keys.Union(after.ByDifficulty.Keys).Order().ToArray();
        double Get(EvalReport r, int l, Func<(double Accuracy, double FormatRate, double ThinkRate, double MeanLength, int Count), double> f) =>
            r.ByDifficulty.TryGetValue(l, out var v) ? f(v) : 0;
        File.WriteAllBytes(Path.Combine(runDir, "accuracy_by_difficulty.png"),
            BarChart([levels.Select(l => Get(before, l, v => v.Accuracy)).ToArray(), levels.Select(l => Get(after, l, v => v.Accuracy)).ToArray()]));
        File.WriteAllBytes(Path.Combine(runDir, "length_by_difficulty.png"),
            BarChart([levels.Select(l => Get(before, l, v => v.MeanLength)).ToArray(), levels.Select(l => Get(after, l, v => v.MeanLength)).ToArray()]));
    }

    /// <summary>Lines of each series against its index (NaN points are skipped, not joined).</summary>
    public static byte[] LineChart(IReadOnlyList<double[]> series, int width = 480, int height = 300)
    {
        var img = new Canvas(width, height);
        double max = series.SelectMany(s => s).Where(double.IsFinite).DefaultIfEmpty(1).Max();
        double min = Math.Min(0, series.SelectMany(s => s).Where(double.IsFinite).DefaultIfEmpty(0).Min());
        if (max <= min) max = min + 1;
        int n = series.Max(s => s.Length);
        var (x0, y0, x1, y1) = img.Frame(min, max);
        for (int k = 0; k < series.Count; k++)
        {
            (int X, int Y)? prev = null;
            for (int i = 0; i < series[k].Length; i++)
            {
                double v = series[k][i];
                if (!double.IsFinite(v)) continue;
                int x = x0 + (n <= 1 ? 0 : (int)Math.Round((double)i * (x1 - x0) / (n - 1)));
                int y = y1 - (int)Math.Round((v - min) / (max - min) * (y1 - y0));
                if (prev is { } p) img.Line(p.X, p.Y, x, y, Colors[k % Colors.Length]);
                img.Dot(x, y, Colors[k % Colors.Length]);
                prev = (x, y);
            }
        }
        return img.ToPng();
    }

    /// <summary>Groups of bars (one group per category, one bar per series).</summary>
    public static byte[] BarChart(IReadOnlyList<double[]> series, int width = 480, int height = 300)
    {
        var img = new Canvas(width, height);
        double max = series.SelectMany(s => s).Where(double.IsFinite).DefaultIfEmpty(1).Max();
        if (max <= 0) max = 1;
        var (x0, y0, x1, y1) = img.Frame(0, max);
        int groups = series.Max(s => s.Length);
        if (groups == 0) return img.ToPng();
        double groupWidth = (double)(x1 - x0) / groups;
        double barWidth = groupWidth * 0.8 / series.Count;
        for (int g = 0; g < groups; g++)
            for (int k = 0; k < series.Count; k++)
            {
                double v = g < series[k].Length && double.IsFinite(series[k][g]) ? series[k][g] : 0;
                int left = x0 + (int)(g * groupWidth + groupWidth * 0.1 + k * barWidth);
                int top = y1 - (int)Math.Round(v / max * (y1 - y0));
                img.Fill(left, top, left + Math.Max(1, (int)barWidth - 1), y1, Colors[k % Colors.Length]);
            }
        return img.ToPng();
    }

    private sealed class Canvas(int width, int height)
    {
        private readonly byte[] _rgb = Enumerable.Repeat((byte)255, width * height * 3).ToArray();

        public void Set(int x, int y, (byte R, byte G, byte B) c)
        {
            if (x < 0 || y < 0 || x >= width || y >= height) return;
            int i = (y * width + x) * 3;
            (_rgb[i], _rgb[i + 1], _rgb[i + 2]) = c;
        }

        public void Fill(int xa, int ya, int xb, int yb, (byte, byte, byte) c)
        {
            for (int y = Math.Min(ya, yb); y <= Math.Max(ya, yb); y++)
                for (int x = Math.Min(xa, xb); x <= Math.Max(xa, xb); x++) Set(x, y, c);
        }

        public void Dot(int x, int y, (byte, byte, byte) c) => Fill(x - 1, y - 1, x + 1, y + 1, c);

        // Bresenham, two pixels thick.
        public void Line(int xa, int ya, int xb, int yb, (byte, byte, byte) c)
        {
            int dx = Math.Abs(xb - xa), dy = -Math.Abs(yb - ya), sx = xa < xb ? 1 : -1, sy = ya < yb ? 1 : -1, err = dx + dy;
            while (true)
            {
                Set(xa, ya, c);
                Set(xa, ya + 1, c);
                if (xa == xb && ya == yb) return;
                int e2 = 2 * err;
                if (e2 >= dy) { err += dy; xa += sx; }
                if (e2 <= dx) { err += dx; ya += sy; }
            }
        }

        /// <summary>Axes and a quarter grid; returns the plot area (left, top, right, bottom).</summary>
        public (int, int, int, int) Frame(double min, double max)
        {
            int x0 = 30, y0 = 15, x1 = width - 15, y1 = height - 25;
            for (int q = 1; q <= 4; q++)
            {
                int y = y1 - q * (y1 - y0) / 4;
                for (int x = x0; x <= x1; x += 2) Set(x, y, (220, 220, 220));
            }
            Fill(x0 - 1, y0, x0, y1, (0, 0, 0));
            Fill(x0, y1, x1, y1 + 1, (0, 0, 0));
            return (x0 + 2, y0, x1, y1 - 2);
        }

        public byte[] ToPng()
        {
            using var ms = new MemoryStream();
            ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
            var ihdr = new byte[13];
            BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
            BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
            ihdr[8] = 8;   // bits per channel
            ihdr[9] = 2;   // RGB
            Chunk(ms, "IHDR", ihdr);
            using (var raw = new MemoryStream())
            {
                using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
                    for (int y = 0; y < height; y++)
                    {
                        z.WriteByte(0);   // filter: none
                        z.Write(_rgb, y * width * 3, width * 3);
                    }
                Chunk(ms, "IDAT", raw.ToArray());
            }
            Chunk(ms, "IEND", []);
            return ms.ToArray();
        }

        private static void Chunk(Stream s, string type, byte[] data)
        {
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
            s.Write(len);
            var body = new byte[4 + data.Length];
            for (int i = 0; i < 4; i++) body[i] = (byte)type[i];
            data.CopyTo(body, 4);
            s.Write(body);
            BinaryPrimitives.WriteUInt32BigEndian(len, Crc32(body));
            s.Write(len);
        }

        private static uint Crc32(byte[] data)
        {
            uint c = 0xFFFFFFFF;
            foreach (var b in data)
            {
                c ^= b;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }
            return ~c;
        }
    }
}
