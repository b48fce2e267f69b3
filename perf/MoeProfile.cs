using System.Diagnostics;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;

namespace NativeReasoner.Perf;

/// <summary>
/// `perf -- profile-moe [f32|q8_0|…] [prefill|decode] [tokens or steps]`: where a DeepSeek-V3 bench-tiny prefill
/// (the compare script's row, real vocabulary: one sequence of 512 tokens) or batch-16 decode step's time goes, at
/// fp32 or with the weights packed as <c>nr quantize</c> packs them. Replays the model's forward module by module (the
/// MoE block op by op: routing, permutation, dispatch, the grouped expert SwiGLU, combine, shared expert) with a
/// stopwatch around each part.
/// Wall-clock by default; NR_PROFILE_CLOCK=thread gives main-thread CPU time (run with NR_NUM_THREADS=1). Comparing
/// a 1-thread and a 2-thread run shows which parts the worker pool speeds up and which it only costs.
/// </summary>
public static class MoeProfile
{
    public static void Run(string type, string mode, int count)
    {
        // The compare script's bench-tiny row: the preset with the real (Qwen) vocabulary, whose untied head and
        // embedding are most of the file (151,936 × 128 each).
        var c = DeepseekV3Config.Preset("bench-tiny") with { VocabSize = 151936 };
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        model.Eval();
        if (type != "f32") PackedWeights.Pack(model, QuantFormatInfo.Parse(type));
        bool prefill = mode == "prefill";
        int b = prefill ? 1 : 16, prompt = prefill ? count : 32, rounds = prefill ? 5 : count;
        var rng = new Generator(3);
        var ids = new long[b * prompt];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(151643);
        bool cpu = Environment.GetEnvironmentVariable("NR_PROFILE_CLOCK") == "thread";
        var times = new Dictionary<string, double>();
        var order = new List<string>();
        double mark = 0;
        double Now() => cpu ? DecodeProfile.ThreadCpuMs() : Stopwatch.GetTimestamp() * 1e3 / Stopwatch.Frequency;
        void Tick(string name)
        {
            double now = Now();
            if (!times.ContainsKey(name)) { times[name] = 0; order.Add(name); }
            times[name] += now - mark;
            mark = Now();
        }
        Tensor Moe(MoeLayer moe, Tensor x, int n)
        {
            var flat = x.Reshape(n, c.HiddenSize);
            // MoeGate.Route's three steps for the bench-tiny router (sigmoid, noaux_tc, 8 groups keep 4, top-8).
            var logits = Tensor.Linear(flat, moe.Gate.Weight);                      // [n, E]
            Tick("moe: gate linear");
            var scores = logits.Sigmoid();
            Tick("moe: gate sigmoid");
            var (indices, weights) = Functional.MoeRoute(scores, moe.Gate.ScoreCorrectionBias, c.NGroup, c.TopkGroup,
                c.NumExpertsPerTok, useBias: true, normalize: true, (float)c.RoutedScalingFactor);
            Tick("moe: route (top-k kernel)");
            var (offsets, slotOrder, slotPosition) = Functional.MoePermute(indices, c.NRoutedExperts);
            slotOrder.Dispose();
            Tick("moe: permute");
            var xs = Functional.MoeDispatch(flat, slotPosition, c.NumExpertsPerTok);
            Tick("moe: dispatch");
            var ys = Functional.GroupedSwiGlu(xs, offsets,
                moe.Experts.Select(e => (Tensor)e.GateProj.Weight).ToArray(),
                moe.Experts.Select(e => (Tensor)e.UpProj.Weight).ToArray(),
                moe.Experts.Select(e => (Tensor)e.DownProj.Weight).ToArray());
            Tick("moe: grouped swiglu");
            var routed = Functional.MoeCombine(ys, slotPosition, weights);
            Tick("moe: combine");
            var shared = moe.SharedExperts!.Forward(flat);
            Tick("moe: shared expert");
            var m = routed + shared;
            Tick("moe: add");
            return m;
        }

        for (int round = 0; round < 2; round++)
        {
            times.Clear();
            order.Clear();
            int n = round == 0 ? 2 : rounds;
            var next = new long[b];
            var total = Stopwatch.StartNew();
            for (int rep = 0; rep < n; rep++)
            {
                using var cache = model.CreateCache(b, prompt + 2);
                using var noGrad = Tensor.NoGrad();
                using var scope = new TensorScope();
                if (!prefill)
                {
                    // The prompt is not timed: each rep is one decode step after a 32-token prefill.
                    var logits = model.ForwardLast(Tensor.FromArray(ids, [b, prompt]), cache, default).ToArray();
                    for (int i = 0; i < b; i++) next[i] = logits.AsSpan(i * c.VocabSize, c.VocabSize).IndexOf(
                        logits.AsSpan(i * c.VocabSize, c.VocabSize).ToArray().Max());
                }
                if (rep == 0) total.Restart();
                mark = Now();
                int t = prefill ? prompt : 1, rows = b * t;
                var starts = (int[])cache.Lengths.Clone();
                Tensor cos, sin;
                if (prefill) (cos, sin) = model.Rotary.Range(0, t);
                else (cos, sin) = model.Rotary.For(starts);
                var h = model.Model.EmbedTokens.Forward(Tensor.FromArray(prefill ? ids : next, [b, t]));
                Tick("embed + rope tables");
                foreach (var layer in model.Model.Layers)
                {
                    var x = layer.InputLayerNorm.Forward(h);
                    Tick("rmsnorm");
                    var a = prefill ? layer.SelfAttn.Forward(x, cos, sin, cache, layer.Index)
                        : layer.SelfAttn.ForwardAbsorbed(x, cos, sin, cache, layer.Index, starts);
                    Tick("attention (MLA)");
                    h = h + a;
                    Tick("residual add");
                    x = layer.PostAttentionLayerNorm.Forward(h);
                    Tick("rmsnorm");
                    var m = layer.Moe is { } moe
                        ? Moe(moe, x, rows).View(b, t, c.HiddenSize)
                        : layer.DenseMlp!.Forward(x);
                    if (layer.Moe == null) Tick("dense mlp (layer 0)");
                    h = h + m;
                    Tick("residual add");
                }
                var head = Tensor.Linear(model.Model.Norm.Forward(LastPositions.Select(h, default)),
                    model.LmHead?.Weight ?? model.Model.EmbedTokens.Weight);
                _ = head.ToArray();
                Tick("final norm + head + read");
                scope.Dispose();
                Tick("scope dispose");
            }
            if (round == 0) continue;
            double sum = times.Values.Sum() / n;
            int tokens = prefill ? prompt : b;
            Console.WriteLine($"bench-tiny {type} {(prefill ? $"prefill {prompt} tokens" : $"decode batch {b}")}, " +
                $"{n} reps: {sum:F3} ms each ({tokens * 1000 / sum:F0} tokens/s, " +
                $"{(cpu ? "main-thread CPU" : "wall")}), " +
                $"threads {Environment.GetEnvironmentVariable("NR_NUM_THREADS") ?? "default"}; " +
                $"load {File.ReadAllText("/proc/loadavg").Trim()}");
            foreach (var name in order.OrderByDescending(k => times[k]))
                Console.WriteLine($"  {name,-28} {times[name] / n,8:F3} ms  {100 * times[name] / n / sum,5:F1} %");
        }
    }
}
