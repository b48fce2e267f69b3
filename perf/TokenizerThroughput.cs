using System.Diagnostics;
using System.Text;
using System.Text.Json;
using NativeReasoner.RL;

namespace NativeReasoner.Perf;

/// <summary>
/// Byte-level BPE encode throughput (MB of UTF-8 per second, one thread) for English prose and for code, beside
/// the reference encoder (@lenml/tokenizers, a transformers.js fork, under node) on the same texts in the same run.
/// `dotnet perf/bin/Release/net10.0/NativeReasoner.Perf.dll tokenize [seconds-per-row]`, from the repository root,
/// after `npm install` in tests/reference/tokenizers. Texts: prose = the repository's Markdown plus the comment
/// text of its C# sources; code = its C# sources; each cut to 1 MB and encoded in chunks of about 8 KB (whole lines).
/// Both sides report MB per wall-clock second and per CPU second of their process: on a shared, loaded machine the
/// CPU-time figure is the one-core throughput, the wall-clock one depends on the other processes.
/// </summary>
public static class TokenizerThroughput
{
    private static readonly string[] Names = ["deepseek-v3", "qwen3", "llama3.1"];

    public static void Run(double secondsPerRow)
    {
        string root = Directory.GetCurrentDirectory();
        var corpora = new Dictionary<string, List<string>>
        {
            ["prose"] = Chunks(Prose(root), 1 << 20),
            ["code"] = Chunks(Code(root), 1 << 20),
        };
        var rows = new List<string>();
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        var chunkFile = Path.Combine(Path.GetTempPath(), $"nr-tokenize-bench-{Environment.ProcessId}.json");
        File.WriteAllText(chunkFile, JsonSerializer.Serialize(corpora));
        try
        {
            foreach (var name in Names)
            {
                var dir = Unpack(root, name);
                ITokenizer tok;
                try { tok = TokenizerLoader.Load(dir); }
                finally { Directory.Delete(dir, true); }
                var reference = NodeReference(root, name, chunkFile, secondsPerRow);
                foreach (var (kind, chunks) in corpora)
                {
                    double mb = chunks.Sum(c => Encoding.UTF8.GetByteCount(c)) / 1e6;
                    long tokens = 0;
                    foreach (var c in chunks) tokens += tok.Encode(c).Length; // warm-up: JIT, regex, BPE cache
                    var process = Process.GetCurrentProcess();
                    var cpu0 = process.TotalProcessorTime;
                    var sw = Stopwatch.StartNew();
                    int passes = 0;
                    do
                    {
                        foreach (var c in chunks) tok.Encode(c);
                        passes++;
                    } while (sw.Elapsed.TotalSeconds < secondsPerRow);
                    double wall = sw.Elapsed.TotalSeconds;
                    process.Refresh();
                    double cpu = (process.TotalProcessorTime - cpu0).TotalSeconds;
                    double ours = mb * passes / wall, oursCpu = mb * passes / cpu;
                    var (refMbs, refCpuMbs, refTokens) = reference[kind];
                    string same = refTokens == tokens ? "yes" : $"NO ({refTokens})";
                    rows.Add($"| {name} | {kind} | {mb:F2} | {tokens} | {same} | {oursCpu:F1} | {refCpuMbs:F2} | " +
                        $"{oursCpu / refCpuMbs:F1}× | {ours:F1} | {refMbs:F2} | {ours / refMbs:F1}× |");
                    Console.WriteLine(rows[^1]);
                }
            }
        }
        finally { File.Delete(chunkFile); }
        Console.WriteLine();
        Console.WriteLine($"load average before: {load}; after: " +
            $"{(File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?")}");
        Console.WriteLine("| tokenizer | text | MB | tokens | same count as reference | ours MB/CPU-s | " +
            "reference MB/CPU-s | ratio | ours MB/s wall | reference MB/s wall | ratio |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows) Console.WriteLine(r);
    }

    private static string Prose(string root)
    {
        var sb = new StringBuilder();
        foreach (var f in Files(root, "*.md")) sb.Append(File.ReadAllText(f)).Append('\n');
        foreach (var f in Files(root, "*.cs"))
            foreach (var line in File.ReadLines(f))
            {
                var t = line.TrimStart();
                if (t.StartsWith("///")) t = t[3..];
                else if (t.StartsWith("//")) t = t[2..];
                else continue;
                t = t.Replace("<summary>", "").Replace("</summary>", "").Trim();
                if (t.Length > 0) sb.Append(t).Append('\n');
            }
        return sb.ToString();
    }

    private static string Code(string root)
    {
        var sb = new StringBuilder();
        foreach (var f in Files(root, "*.cs")) sb.Append(File.ReadAllText(f)).Append('\n');
        return sb.ToString();
    }

    private static IEnumerable<string> Files(string root, string pattern) =>
        new[] { "src", "docs", "perf", "README.md" }
            .SelectMany(p => File.Exists(Path.Combine(root, p)) ? [Path.Combine(root, p)]
                : Directory.Exists(Path.Combine(root, p)) ? Directory.EnumerateFiles(Path.Combine(root, p), pattern,
                    SearchOption.AllDirectories)
                : [])
            .Where(f => Path.GetFileName(f).EndsWith(pattern.TrimStart('*')) && !f.Contains("/bin/")
                && !f.Contains("/obj/"))
            .Order(StringComparer.Ordinal);

    // Whole lines, about 8 KB each, up to `limit` UTF-16 characters in all.
    private static List<string> Chunks(string text, int limit)
    {
        if (text.Length > limit) text = text[..text.LastIndexOf('\n', limit)];
        var chunks = new List<string>();
        int start = 0;
        while (start < text.Length)
        {
            int end = Math.Min(text.Length, start + 8192);
            if (end < text.Length)
            {
                int nl = text.LastIndexOf('\n', end - 1, end - start);
                if (nl > start) end = nl + 1;
            }
            chunks.Add(text[start..end]);
            start = end;
        }
        return chunks;
    }

    private static string Unpack(string root, string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "nr-tokenize-bench-" + name + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
        {
            using var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(root, "tests", "fixtures",
                "tokenizers", name, file + ".gz")),
                System.IO.Compression.CompressionMode.Decompress);
            using var outFile = File.Create(Path.Combine(dir, file));
            gz.CopyTo(outFile);
        }
        return dir;
    }

    private static Dictionary<string, (double MBs, double CpuMBs, long Tokens)> NodeReference(string root, string name,
        string chunkFile, double seconds)
    {
        var psi = new ProcessStartInfo("node", [Path.Combine(root, "perf", "tokenizer_reference.js"), name, chunkFile,
            seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start node");
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"node reference failed ({p.ExitCode}): {stderr}");
        using var doc = JsonDocument.Parse(stdout);
        return doc.RootElement.EnumerateObject().ToDictionary(e => e.Name,
            e => (e.Value.GetProperty("mb_per_s").GetDouble(), e.Value.GetProperty("mb_per_cpu_s").GetDouble(),
                e.Value.GetProperty("tokens").GetInt64()));
    }
}
