using System.Diagnostics;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Cpu.Quant;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using NativeReasoner.Nn;

namespace NativeReasoner.Perf;

/// <summary>
/// `dotnet perf/bin/Release/net10.0/NativeReasoner.Perf.dll profile-dense-decode [f32|bf16|q8_0|q4_k] [batch]
/// [steps] [qwen2.5-0.5b|r1-distill-qwen-1.5b] [layers]`: where a decode step's time goes for a Qwen2-family shape
/// (default Qwen2.5-0.5B, all 24 layers; random weights packed as <c>nr quantize</c> packs them; a tied head stays
/// the bf16 embedding). Fewer layers keep the 1.5B shape's set-up (random init and packing) to seconds while every
/// projection keeps its real shape. After a 32-token prefill, each step replays
/// <see cref="DenseForCausalLM.ForwardCachedLast"/> layer by layer with a stopwatch around the embedding, the norms,
/// the attention block, the MLP block, the residual adds and the head; every projection is then run once more on
/// the same input, alone, to split the blocks into projections and the rest (RoPE, cache write, attention core,
/// SiLU·up). Last, the fixed cost of one packed product per shape: the same call over 2 weight rows instead of N
/// (activation quantisation, thread wake-up and join), against the full call.
/// </summary>
public static class DenseDecodeProfile
{
    public static void Run(string type, int batch, int steps, string shape = "qwen2.5-0.5b", int layers = 0)
    {
        var config = (DenseConfig)CompareLlamaCpp.Shape(shape);
        if (layers > 0) config = config with { NumHiddenLayers = layers };
        using var model = new DenseForCausalLM(config, new Generator(1234));
        model.Eval();
        QuantFormat? format = type == "f32" ? null : QuantFormatInfo.Parse(type);
        if (format is { } f) PackedWeights.Pack(model, f);
        var rng = new Random(7);
        const int prompt = 32;
        var parts = new Dictionary<string, double>();
        double all = 0;
        using (Tensor.NoGrad())
        using (var cache = (GqaKvCache)model.CreateCache(batch, prompt + steps + 8))
        {
            using (var scope = new TensorScope())
            {
                var ids = Enumerable.Range(0, batch * prompt).Select(_ => (long)rng.Next(0, 151643)).ToArray();
                _ = model.ForwardLast(Tensor.FromArray(ids, [batch, prompt]), cache, default).ToArray();
            }
            for (int step = 0; step < steps; step++)
            {
                using var scope = new TensorScope();
                var ids = Enumerable.Range(0, batch).Select(_ => (long)rng.Next(0, 151643)).ToArray();
                // The first two steps warm up (JIT tiers, scratch pools); the rest are measured.
                var timed = step < 2 ? new Dictionary<string, double>() : parts;
                double ms = Step(model, cache, Tensor.FromArray(ids, [batch, 1]), timed);
                if (step >= 2) all += ms;
            }
        }
        int measured = Math.Max(1, steps - 2);
        Console.WriteLine($"{shape} ({config.NumHiddenLayers} layers) {type}, batch {batch}, {measured} steps: " +
            $"{all / measured:F2} ms per step " +
            $"({batch * measured / all * 1e3:F1} tokens/s; the isolated projections excluded); " +
            $"load {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (var (name, ms) in parts.OrderByDescending(p => p.Value))
            Console.WriteLine($"  {name,-34} {ms / measured,8:F2} ms {100 * ms / all,5:F1} %");
        if (format == null) return;
        FixedCosts(model, 1);
        if (batch > 1) FixedCosts(model, batch);
    }

    /// <summary>One decode step, its parts added to <paramref name="parts"/>; returns the step's milliseconds without
    /// the isolated projections.</summary>
    private static double Step(DenseForCausalLM model, GqaKvCache cache, Tensor ids, Dictionary<string, double> parts)
    {
        int b = ids.Shape[0];
        var local = new Dictionary<string, double>();
        T Time<T>(string name, Func<T> f)
        {
            long start = Stopwatch.GetTimestamp();
            var r = f();
            local[name] = local.GetValueOrDefault(name) + Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            return r;
        }
        // Outside the step's total: the same product again, alone (its time is subtracted from its block).
        var isolated = new Dictionary<string, double>();
        void Alone(string name, Tensor x, Linear l)
        {
            long start = Stopwatch.GetTimestamp();
            using var y = Tensor.Linear(x, l.Weight, l.Bias);
            isolated[name] = isolated.GetValueOrDefault(name) + Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        long stepStart = Stopwatch.GetTimestamp();
        double aloneMs = 0;
        var starts = cache.Lengths.ToArray();
        var positions = starts.ToArray();
        var (cos, sin) = model.Rotary.For(positions);
        var rows = Enumerable.Range(0, b).ToArray();
        var h = Time("embedding", () => model.Model.EmbedTokens.Forward(ids));
        foreach (var layer in model.Model.Layers)
        {
            var x = Time("norms", () => layer.InputLayerNorm.Forward(h));
            var a = Time("attention block", () => layer.SelfAttn.ForwardCached(x, cos, sin, cache, layer.Index,
                starts, rows));
            h = Time("residual adds", () => h + a);
            var y = Time("norms", () => layer.PostAttentionLayerNorm.Forward(h));
            var m = Time("mlp block", () => layer.Mlp!.Forward(y));
            h = Time("residual adds", () => h + m);
            long aloneStart = Stopwatch.GetTimestamp();
            var attn = layer.SelfAttn;
            Alone("q_proj", x, attn.QProj);
            Alone("k_proj", x, attn.KProj);
            Alone("v_proj", x, attn.VProj);
            using (var o = Tensor.Zeros([b, 1, attn.OProj.Weight.Shape[1]])) Alone("o_proj", o, attn.OProj);
            Alone("gate_proj", y, layer.Mlp!.GateProj);
            Alone("up_proj", y, layer.Mlp!.UpProj);
            using (var d = Tensor.Zeros([b, 1, layer.Mlp!.DownProj.Weight.Shape[1]]))
                Alone("down_proj", d, layer.Mlp!.DownProj);
            aloneMs += Stopwatch.GetElapsedTime(aloneStart).TotalMilliseconds;
        }
        for (int i = 0; i < b; i++) cache.Lengths[i] = starts[i] + 1;
        var n = Time("final norm", () => model.Model.Norm.Forward(h));
        var logits = Time("head", () => Tensor.Linear(n, model.LmHead?.Weight ?? model.Model.EmbedTokens.Weight));
        _ = logits.ToArray();
        double stepMs = Stopwatch.GetElapsedTime(stepStart).TotalMilliseconds - aloneMs;
        double attnProj = isolated["q_proj"] + isolated["k_proj"] + isolated["v_proj"] + isolated["o_proj"];
        double mlpProj = isolated["gate_proj"] + isolated["up_proj"] + isolated["down_proj"];
        local["attention block − its projections"] = local["attention block"] - attnProj;
        local["mlp block − its projections"] = local["mlp block"] - mlpProj;
        local.Remove("attention block");
        local.Remove("mlp block");
        foreach (var (name, ms) in isolated.Concat(local)) parts[name] = parts.GetValueOrDefault(name) + ms;
        return stepMs;
    }

    /// <summary>
    /// Per projection shape: the full packed product on every code path this CPU runs (the integer dots for fewer
    /// than 16 rows), and the same call over 2 weight rows (the per-call fixed cost) on the default path.
    /// </summary>
    private static unsafe void FixedCosts(DenseForCausalLM model, int batch)
    {
        // NR_PROFILE_CLOCK=thread: this thread's CPU time (run with NR_NUM_THREADS=1 so the products run on it),
        // which other processes' load does not inflate; otherwise wall-clock.
        bool threadClock = Environment.GetEnvironmentVariable("NR_PROFILE_CLOCK") == "thread";
        double Now() => threadClock ? DecodeProfile.ThreadCpuMs() * 1e3
            : Stopwatch.GetTimestamp() * 1e6 / Stopwatch.Frequency;
        var layer = model.Model.Layers[0];
        var weights = new (string Name, Tensor W)[]
        {
            ("q_proj", layer.SelfAttn.QProj.Weight), ("k_proj", layer.SelfAttn.KProj.Weight),
            ("gate_proj", layer.Mlp!.GateProj.Weight), ("down_proj", layer.Mlp!.DownProj.Weight),
            ("head", model.LmHead?.Weight ?? model.Model.EmbedTokens.Weight),
        };
        // Scalar is left out: 10× slower, it would dominate the run.
        var isas = Enum.GetValues<QuantIsa>().Where(i => i != QuantIsa.Scalar && QuantIsas.Supported(i)).Reverse()
            .ToArray();
        // At batch > 1 also every path of the best ISA forced: the per-row dots, the integer tiles, the SGEMM panels.
        var paths = batch > 1
            ? new[] { QuantizedPath.RowDots, QuantizedPath.Tiles, QuantizedPath.Panels }
            : Array.Empty<QuantizedPath>();
        Console.WriteLine($"  products at batch {batch}, µs per call (fastest of 15; GB/s of weights read): " +
            string.Join(", ", isas) + (paths.Length > 0 ? ", " + string.Join(", ", paths) : "") + "; 2 rows of N");
        foreach (var (name, w) in weights)
        {
            int n = w.Shape[0], k = w.Shape[1];
            var fmt = w.PackedFormat ?? QuantFormat.BF16;
            var x = new float[batch * k];
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            var y = new float[batch * n];
            // The paths take turns, 15 rounds, and each keeps its fastest call: on a loaded machine the minimum is
            // the stable statistic, and turns spread the load's swings over all paths alike.
            var best = isas.ToDictionary(i => i, _ => double.MaxValue);
            var bestPath = paths.ToDictionary(p => p, _ => double.MaxValue);
            double fixedCost = double.MaxValue;
            fixed (float* px = x, py = y)
                for (int round = 0; round < 15; round++)
                {
                    foreach (var isa in isas)
                    {
                        double s = Now();
                        CpuKernels.Instance.QuantizedMatMul(isa, fmt, batch, n, k, px, w.RawPointer, py);
                        best[isa] = Math.Min(best[isa], Now() - s);
                    }
                    foreach (var path in paths)
                    {
                        if (path == QuantizedPath.Tiles && !QuantTiles.Handles(fmt)) continue;
                        double s = Now();
                        CpuKernels.Instance.QuantizedMatMul(QuantIsas.Best, fmt, batch, n, k, px, w.RawPointer, py,
                            path);
                        bestPath[path] = Math.Min(bestPath[path], Now() - s);
                    }
                    double t = Now();
                    CpuKernels.Instance.QuantizedMatMul(QuantIsas.Best, fmt, batch, 2, k, px, w.RawPointer, py);
                    fixedCost = Math.Min(fixedCost, Now() - t);
                }
            double bytes = (double)n * fmt.RowBytes(k);
            var line = $"    {name,-10} {fmt.Name(),-5} {n,6}x{k,-5}";
            foreach (var isa in isas) line += $" {best[isa],9:F1} ({bytes / best[isa] / 1e3,5:F1})";
            foreach (var path in paths)
                line += bestPath[path] == double.MaxValue ? "         -        "
                    : $" {bestPath[path],9:F1} ({bytes / bestPath[path] / 1e3,5:F1})";
            Console.WriteLine(line + $" {fixedCost,7:F1}");
        }
    }
    /// <summary>
    /// `profile-quant-paths TYPE ROWS…`: the packed products of a Qwen2.5-0.5B layer (q, gate, down) at each row
    /// count on every path of the best ISA forced — per-row dots (up to 32 rows), integer tiles, SGEMM panels —
    /// fastest of 7 calls, in µs; the cut-overs of <see cref="CpuKernels.TileFromRows"/> and
    /// <see cref="CpuKernels.IntegerPanelFromRows"/> come from it. NR_PROFILE_CLOCK=thread as in <see cref="Run"/>.
    /// </summary>
    public static unsafe void Paths(string type, int[] rowCounts)
    {
        using var model = new DenseForCausalLM(PrefillProfile.Qwen25HalfBConfig, new Generator(1234));
        PackedWeights.Pack(model, QuantFormatInfo.Parse(type));
        bool threadClock = Environment.GetEnvironmentVariable("NR_PROFILE_CLOCK") == "thread";
        double Now() => threadClock ? DecodeProfile.ThreadCpuMs() * 1e3
            : Stopwatch.GetTimestamp() * 1e6 / Stopwatch.Frequency;
        var layer = model.Model.Layers[0];
        var weights = new (string Name, Tensor W)[]
        {
            ("q_proj", layer.SelfAttn.QProj.Weight), ("gate_proj", layer.Mlp!.GateProj.Weight),
            ("down_proj", layer.Mlp!.DownProj.Weight),
        };
        var paths = new[] { QuantizedPath.RowDots, QuantizedPath.Tiles, QuantizedPath.Panels };
        Console.WriteLine($"{type} on {QuantIsas.Best}, µs per call (fastest of 7): rows, then " +
            string.Join(", ", paths) + $"; load {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (int rows in rowCounts)
            foreach (var (name, w) in weights)
            {
                int n = w.Shape[0], k = w.Shape[1];
                var fmt = w.PackedFormat!.Value;
                var x = new float[rows * k];
                var rng = new Random(1);
                for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
                var y = new float[rows * n];
                var line = $"  {rows,4} {name,-10} {n,5}x{k,-5}";
                fixed (float* px = x, py = y)
                    foreach (var path in paths)
                    {
                        if (path == QuantizedPath.RowDots && rows > 32)
                        {
                            line += "         -";
                            continue;
                        }
                        double best = double.MaxValue;
                        for (int round = 0; round < 7; round++)
                        {
                            double t = Now();
                            CpuKernels.Instance.QuantizedMatMul(QuantIsas.Best, fmt, rows, n, k, px, w.RawPointer, py,
                                path);
                            best = Math.Min(best, Now() - t);
                        }
                        line += $" {best,9:F1}";
                    }
                Console.WriteLine(line);
            }
    }
}
