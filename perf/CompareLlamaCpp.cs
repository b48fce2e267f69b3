using System.Globalization;
using System.IO.Compression;
using System.Text;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using NativeReasoner.Model.Gguf;

namespace NativeReasoner.Perf;

/// <summary>
/// `dotnet run -c Release --project perf -- compare-llamacpp [options]`: random-weight models of real shapes, exported
/// once per type to GGUF, then run from that same file by this engine and by llama.cpp (LLamaSharp's libllama.so)
/// with the same threads, back to back in alternating order: prefill tokens/s (one prompt), decode tokens/s at batch 1
/// and 16, and the logits of both on one prompt (max |ours − llama.cpp| / max |llama.cpp|). Each engine runs its
/// three measurements once untimed first (JIT tiers, page faults, llama.cpp's buffers). The run measures the host's
/// copy and read-only bandwidths once (<see cref="HostCopyBandwidth"/>); each row shows the weight bytes a batch-1
/// decode step reads per token in this engine (<see cref="DecodeWeightTraffic"/>: for an MoE the top-k routed
/// experts, not the whole file), the bandwidth bound (read-only stream GB/s ÷ those bytes) and our batch-1 decode as
/// a share of it.
/// Options: --shapes a,b  --dtypes f32,f16,bf16,q8_0,q4_k  --threads N  --prompt N  --decode N  --rounds N
/// --tokenizer DIR (tokenizer.json + tokenizer_config.json; default the qwen3 fixture)  --work DIR  --out FILE.md
/// --rows shape:type,shape:type (only these rows, instead of every shape × type)  --ours-as-loaded (bf16, q8_0,
/// q4_0, q4_k files: run this engine on the weights as the GGUF reader holds them, not packed in the file's type).
/// Each row prints its wall time, and the run its total.
/// </summary>
public static class CompareLlamaCpp
{
    internal static ICausalLMConfig Shape(string name) => name switch
    {
        // DeepSeek-V3 (deepseek2 in GGUF): the shared CPU benchmark config, and the ≈ 0.75 B MoE of the
        // low-precision issue (hidden 1024, 8 layers, 64 routed experts of 512 + 1 shared, top-6).
        "bench-tiny" => DeepseekV3Config.Preset("bench-tiny") with
        {
            VocabSize = 151936,
            BosTokenId = null,
            EosTokenIds = [151643],
        },
        "deepseek-moe-0.75b" => new DeepseekV3Config
        {
            VocabSize = 151936, HiddenSize = 1024, IntermediateSize = 2816, MoeIntermediateSize = 512,
            NumHiddenLayers = 8, FirstKDenseReplace = 1, NumAttentionHeads = 8, NumKeyValueHeads = 8,
            NRoutedExperts = 64, NSharedExperts = 1, NumExpertsPerTok = 6, NGroup = 8, TopkGroup = 4,
            RoutedScalingFactor = 2.5, QLoraRank = 384, KvLoraRank = 256, QkNopeHeadDim = 64, QkRopeHeadDim = 32,
            VHeadDim = 64, MaxPositionEmbeddings = 4096, BosTokenId = null, EosTokenIds = [151643],
        }.Validate(),
        // Qwen2 blocks at a size that runs in seconds on two cores, with the real vocabulary.
        "qwen2-small" => Qwen2(hidden: 256, layers: 4, heads: 4, kvHeads: 2, ff: 704, tied: false),
        // Qwen2.5-0.5B's config.json.
        "qwen2.5-0.5b" => Qwen2(hidden: 896, layers: 24, heads: 14, kvHeads: 2, ff: 4864, tied: true),
        // DeepSeek-R1-Distill-Qwen-1.5B's config.json.
        "r1-distill-qwen-1.5b" => Qwen2(hidden: 1536, layers: 28, heads: 12, kvHeads: 2, ff: 8960, tied: false),
        _ => throw new ArgumentException($"unknown shape '{name}': qwen2-small, qwen2.5-0.5b, r1-distill-qwen-1.5b, " +
            "bench-tiny, deepseek-moe-0.75b"),
    };

    private static DenseConfig Qwen2(int hidden, int layers, int heads, int kvHeads, int ff, bool tied) =>
        NativeReasoner.Model.Qwen2.Qwen2Family.Defaults with
        {
            VocabSize = 151936,
            HiddenSize = hidden,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = hidden / heads,
            IntermediateSize = ff,
            TieWordEmbeddings = tied,
            MaxPositionEmbeddings = 4096,
            RmsNormEps = 1e-6,
            Rope = new RopeParameters { Theta = 1000000.0 },
            BosTokenId = null,
            EosTokenIds = [151643],
        };

    public static void Run(string[] args)
    {
        string Opt(string key, string fallback)
        {
            int i = Array.IndexOf(args, key);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var shapes = Opt("--shapes", "qwen2-small").Split(',');
        var dtypes = Opt("--dtypes", "f32,f16,bf16,q8_0,q4_k").Split(',');
        var rows = Opt("--rows", "") is { Length: > 0 } r
            ? r.Split(',').Select(ParseRow).ToList()
            : shapes.SelectMany(sh => dtypes.Select(dt => (Shape: sh, Type: dt))).ToList();
        bool asLoaded = args.Contains("--ours-as-loaded");
        var total = System.Diagnostics.Stopwatch.StartNew();
        int threads = int.Parse(Opt("--threads", "2"), CultureInfo.InvariantCulture);
        int prompt = int.Parse(Opt("--prompt", "512"), CultureInfo.InvariantCulture);
        int decode = int.Parse(Opt("--decode", "16"), CultureInfo.InvariantCulture);
        int rounds = int.Parse(Opt("--rounds", "2"), CultureInfo.InvariantCulture);
        string work = Opt("--work", Path.Combine(Path.GetTempPath(), "nr-compare-llamacpp"));
        string? outFile = Opt("--out", "") is { Length: > 0 } o ? o : null;
        string tokenizerDir = Opt("--tokenizer", "");
        Environment.SetEnvironmentVariable("NR_NUM_THREADS", threads.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(work);
        var (tokenizerJson, tokenizerConfig) = LoadTokenizer(tokenizerDir);
        // A 256 MiB copy and a read-only stream over the same threads, best of 5 each: the stream's rate is the
        // bound's denominator for every row (a decode step only reads its weights).
        var (copyReadGBs, copyGBs) = HostCopyBandwidth.Measure(256L << 20, 5);
        double readGBs = HostCopyBandwidth.MeasureRead(256L << 20, 5);

        var report = new StringBuilder();
        report.AppendLine($"threads {threads}, prompt {prompt} tokens, {decode} decode steps, {rounds} rounds " +
            "(alternating order, median, after one untimed warm-up); load average at start: " + LoadAverage());
        report.AppendLine($"bandwidth ({threads} threads, 256 MiB, best of 5): read-only stream {readGBs:F1} GB/s; " +
            "copy " +
            $"{copyReadGBs:F1} GB/s read ({copyGBs:F1} GB/s read + written). The bound of decode b1 = the read-only " +
            "rate ÷ the weight bytes read per token");
        report.AppendLine();
        report.AppendLine("| shape | type | file MiB | prefill ours | prefill llama.cpp | × | decode b1 ours | " +
            "decode b1 llama.cpp | × | decode b16 ours | decode b16 llama.cpp | × | logits max rel diff | " +
            "b1 MiB read/token | b1 bound tok/s | b1 ours % of bound |");
        report.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        Console.WriteLine(report.ToString());
        var rowTimes = new List<string>();
        foreach (var (shapeName, dtype) in rows)
        {
            var config = Shape(shapeName);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            string gguf = Path.Combine(work, $"{shapeName}-{dtype}.gguf");
            if (!File.Exists(gguf))
            {
                using var model = config.Build(new Generator(1234));
                GgufExporter.Export(model, gguf, GgufExporter.ParseType(dtype), shapeName, tokenizerJson,
                    tokenizerConfig);
            }
            var pack = asLoaded ? null : PackFormat(dtype);
            string row = MeasureRow(shapeName, dtype, gguf, config, threads, prompt, decode, rounds, pack, readGBs);
            Console.WriteLine(row);
            report.AppendLine(row);
            string time = $"{shapeName} {dtype}: {clock.Elapsed.TotalSeconds:F0} s (load average " +
                $"{LoadAverage()}{(pack is { } f ? $"; ours packed {f.Name()} after the load" : "")})";
            Console.Error.WriteLine("row " + time);
            rowTimes.Add(time);
        }
        report.AppendLine();
        foreach (var t in rowTimes) report.AppendLine("- " + t);
        report.AppendLine();
        report.AppendLine($"load average at end: {LoadAverage()}; total {total.Elapsed.TotalMinutes:F1} min");
        Console.Error.WriteLine($"compare-llamacpp: {rows.Count} rows in {total.Elapsed.TotalMinutes:F1} min");
        if (outFile is not null) File.WriteAllText(outFile, report.ToString());
    }

    private static (string Shape, string Type) ParseRow(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 2)
            throw new ArgumentException($"--rows: '{text}' is not shape:type (e.g. qwen2.5-0.5b:q8_0)");
        _ = Shape(parts[0]);
        _ = GgufExporter.ParseType(parts[1]);
        return (parts[0], parts[1]);
    }

    /// <summary>The packed format that runs a GGUF type's weights in this engine (null: f32 / f16 as loaded).</summary>
    private static QuantFormat? PackFormat(string dtype) => dtype switch
    {
        "bf16" => QuantFormat.BF16,
        "q8_0" => QuantFormat.Q8_0,
        "q4_0" => QuantFormat.Q4_0,
        "q4_k" => QuantFormat.Q4_K,
        _ => null,
    };

    private static string MeasureRow(string shape, string dtype, string gguf, ICausalLMConfig config, int threads,
        int prompt, int decode, int rounds, QuantFormat? pack, double readGBs)
    {
        var rng = new Random(7);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(0, 151643)).ToArray();
        var prefillTokens = Tokens(prompt);
        var single = new[] { Tokens(16) };
        var sixteen = Enumerable.Range(0, 16).Select(_ => Tokens(16)).ToArray();
        var checkTokens = Tokens(24);
        var ours = new List<double>[3];
        var theirs = new List<double>[3];
        for (int k = 0; k < 3; k++)
        {
            ours[k] = [];
            theirs[k] = [];
        }
        double maxRel;
        using var engine = new EngineRunner(gguf, pack);
        using (var exact = new LlamaCppRunner(gguf, threads, contextTokens: 64, maxSequences: 1, exactAttention: true))
        {
            var a = engine.Logits(checkTokens);
            var b = exact.Logits(checkTokens);
            double maxDiff = 0, maxRef = 0;
            for (int i = 0; i < b.Length; i++)
            {
                double d = Math.Abs(a[i] - b[i]);
                if (double.IsNaN(d)) d = double.PositiveInfinity;
                maxDiff = Math.Max(maxDiff, d);
                maxRef = Math.Max(maxRef, Math.Abs(b[i]));
            }
            maxRel = maxDiff / maxRef;
        }
        using var llama = new LlamaCppRunner(gguf, threads, contextTokens: Math.Max(prompt + 8, 16 * (16 + decode + 2)),
            maxSequences: 16, exactAttention: false);
        // r = −1: the untimed warm-up (a first call runs this engine's kernels unoptimised by the JIT's tiers).
        for (int r = -1; r < rounds; r++)
        {
            void Ours()
            {
                double p = prompt / engine.Prefill(prefillTokens);
                double d1 = engine.DecodeTokensPerSecond(single, decode);
                double d16 = engine.DecodeTokensPerSecond(sixteen, decode);
                if (r < 0) return;
                ours[0].Add(p);
                ours[1].Add(d1);
                ours[2].Add(d16);
            }
            void Theirs()
            {
                double p = prompt / llama.Prefill(prefillTokens);
                double d1 = llama.DecodeTokensPerSecond(single, decode);
                double d16 = llama.DecodeTokensPerSecond(sixteen, decode);
                if (r < 0) return;
                theirs[0].Add(p);
                theirs[1].Add(d1);
                theirs[2].Add(d16);
            }
            if (r % 2 == 0) { Ours(); Theirs(); } else { Theirs(); Ours(); }
        }
        string Cell(int k)
        {
            double o = Median(ours[k]), t = Median(theirs[k]);
            return $"{o:F1} | {t:F1} | {o / t:F2}";
        }
        double mib = new FileInfo(gguf).Length / 1048576.0;
        long perToken = engine.DecodeBytesPerToken;
        double bound = readGBs * 1e9 / perToken;
        return $"| {shape} | {dtype} | {mib:F1} | {Cell(0)} | {Cell(1)} | {Cell(2)} | {maxRel:E1} | " +
            $"{perToken / 1048576.0:F2} | {bound:F1} | {100 * Median(ours[1]) / bound:F0} |";
    }

    private static double Median(List<double> xs)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static (string Json, string? Config) LoadTokenizer(string dir)
    {
        if (dir.Length > 0)
        {
            string cfg = Path.Combine(dir, "tokenizer_config.json");
            return (File.ReadAllText(Path.Combine(dir, "tokenizer.json")),
                File.Exists(cfg) ? File.ReadAllText(cfg) : null);
        }
        string? root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "NativeReasoner.sln")))
            root = Path.GetDirectoryName(root);
        if (root is null) throw new FileNotFoundException("no --tokenizer given and the repository root was not found");
        string fixture = Path.Combine(root, "tests", "fixtures", "tokenizers", "qwen3");
        return (ReadGz(Path.Combine(fixture, "tokenizer.json.gz")),
            ReadGz(Path.Combine(fixture, "tokenizer_config.json.gz")));
    }

    private static string ReadGz(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        return reader.ReadToEnd();
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "n/a"; }
    }
}
