using System.Diagnostics;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using NativeReasoner.Nn;

namespace NativeReasoner.Perf;

/// <summary>
/// `dotnet perf/bin/Release/net10.0/NativeReasoner.Perf.dll profile-prefill [f32|bf16|q8_0|q4_0|q4_k] [tokens]`:
/// where a Qwen2.5-0.5B-shaped prefill's time goes (random weights, real vocabulary, packed in the given type as
/// <c>nr quantize</c> packs them). Replays the model's prefill part by part with a stopwatch around each — every
/// projection of every layer (q, k, v, o, gate, up, down), the attention core (RoPE, the causal softmax attention
/// and the cache write), the norms and elementwise ops, the final norm and the head on the last position — and
/// prints each part's wall time, share, and the projections' GFLOP/s. Run it twice (the first warms the JIT).
/// </summary>
public static class PrefillProfile
{
    /// <summary>Qwen2.5-0.5B's config.json (tied embeddings).</summary>
    public static DenseConfig Qwen25HalfBConfig => NativeReasoner.Model.Qwen2.Qwen2Family.Defaults with
    {
        VocabSize = 151936,
        HiddenSize = 896,
        NumHiddenLayers = 24,
        NumAttentionHeads = 14,
        NumKeyValueHeads = 2,
        HeadDim = 64,
        IntermediateSize = 4864,
        TieWordEmbeddings = true,
        MaxPositionEmbeddings = 4096,
        RmsNormEps = 1e-6,
        Rope = new RopeParameters { Theta = 1000000.0 },
    };

    public static void Run(string type, int tokens)
    {
        var config = Qwen25HalfBConfig;
        using var model = new DenseForCausalLM(config, new Generator(1234));
        model.Eval();
        QuantFormat? format = type == "f32" ? null : QuantFormatInfo.Parse(type);
        if (format is { } f) PackedWeights.Pack(model, f);
        var rng = new Random(7);
        var ids = Enumerable.Range(0, tokens).Select(_ => (long)rng.Next(0, 151643)).ToArray();
        for (int pass = 0; pass < 2; pass++)
        {
            var parts = new Dictionary<string, double>();
            var flops = new Dictionary<string, double>();
            var total = Stopwatch.StartNew();
            using (Tensor.NoGrad())
            using (var scope = new TensorScope())
            using (var cache = model.CreateCache(1, tokens + 1))
                Prefill(model, ids, (GqaKvCache)cache, parts, flops);
            double all = total.Elapsed.TotalMilliseconds;
            Console.WriteLine($"pass {pass + 1}: {type}, {tokens} tokens: {all:F0} ms " +
                $"({tokens / all * 1e3:F1} tokens/s); " +
                $"load {File.ReadAllText("/proc/loadavg").Trim()}");
            foreach (var (name, ms) in parts.OrderByDescending(p => p.Value))
                Console.WriteLine($"  {name,-26} {ms,9:F1} ms {100 * ms / all,5:F1} %" +
                    (flops.TryGetValue(name, out var fl) ? $"  {fl / ms / 1e6,6:F1} GFLOP/s" : ""));
        }
    }

    private static void Prefill(DenseForCausalLM model, long[] ids, GqaKvCache cache, Dictionary<string, double> parts,
        Dictionary<string, double> flops)
    {
        int t = ids.Length;
        T Time<T>(string name, Func<T> f, double flop = 0)
        {
            long start = Stopwatch.GetTimestamp();
            var r = f();
            parts[name] = parts.GetValueOrDefault(name) + Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (flop > 0) flops[name] = flops.GetValueOrDefault(name) + flop;
            return r;
        }
        Tensor Project(string name, Tensor x, Linear l) =>
            Time(name, () => Tensor.Linear(x, l.Weight, l.Bias), 2.0 * t * l.Weight.Shape[0] * l.Weight.Shape[1]);

        var (cos, sin) = model.Rotary.Range(0, t);
        var h = Time("embedding", () => model.Model.EmbedTokens.Forward(Tensor.FromArray(ids, [1, t])));
        foreach (var layer in model.Model.Layers)
        {
            var a = layer.SelfAttn;
            var x = Time("norms", () => layer.InputLayerNorm.Forward(h));
            int hd = model.Config.HeadDim, hq = model.Config.NumAttentionHeads, hkv = model.Config.NumKeyValueHeads;
            var q = Project("q_proj", x, a.QProj).View(1, t, hq, hd);
            var k = Project("k_proj", x, a.KProj).View(1, t, hkv, hd);
            var v = Project("v_proj", x, a.VProj).View(1, t, hkv, hd);
            var o = Time("attention core", () =>
            {
                var qr = RotateHalfRope.Apply(q, cos, sin, seqDim: 1).Transpose(1, 2);
                var kr = RotateHalfRope.Apply(k, cos, sin, seqDim: 1).Transpose(1, 2);
                var vt = v.Transpose(1, 2);
                cache.Write(layer.Index, kr, vt, new int[1]);
                var att = Functional.ScaledDotProductAttention(qr, kr, vt, causal: true,
                    scale: 1f / MathF.Sqrt(hd));
                return att.Transpose(1, 2).Reshape(1, t, hq * hd);
            });
            var attnOut = Project("o_proj", o, a.OProj);
            h = Time("residual adds", () => h + attnOut);
            var y = Time("norms", () => layer.PostAttentionLayerNorm.Forward(h));
            var mlp = layer.Mlp!;
            var g = Project("gate_proj", y, mlp.GateProj);
            var u = Project("up_proj", y, mlp.UpProj);
            var act = Time("silu * up", () => g.Silu() * u);
            var down = Project("down_proj", act, mlp.DownProj);
            h = Time("residual adds", () => h + down);
        }
        var last = Time("final norm + head (last)", () =>
            Tensor.Linear(model.Model.Norm.Forward(LastPositions.Select(h, default)), model.Model.EmbedTokens.Weight),
            2.0 * model.Config.VocabSize * model.Config.HiddenSize);
        _ = last.ToArray();
    }
}
