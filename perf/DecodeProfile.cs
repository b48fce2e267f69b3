using System.Diagnostics;
using System.Runtime.InteropServices;
using NativeReasoner.Model;

namespace NativeReasoner.Perf;

/// <summary>
/// `dotnet run -c Release --project perf -- profile-decode [preset] [steps]`: where a batch-16 decode step's
/// time goes. Replays <see cref="DeepseekV3ForCausalLM.ForwardCached"/> module by module (the MoE block op
/// by op) with a stopwatch around each part, after a prefill of 32 tokens; prints the mean milliseconds per
/// step of every part and its share. The parts run exactly the model's ops, in the model's order.
/// </summary>
public static partial class DecodeProfile
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Sec, Nsec; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec ts);

    /// <summary>CPU time of the calling thread in ms (CLOCK_THREAD_CPUTIME_ID): insensitive to other processes' load.</summary>
    public static double ThreadCpuMs()
    {
        ClockGetTime(3, out var ts);
        return ts.Sec * 1e3 + ts.Nsec * 1e-6;
    }

    public static void Run(string preset, int steps)
    {
        var c = DeepseekV3Config.Preset(preset);
        using var model = new DeepseekV3ForCausalLM(c, new Generator(1));
        model.Eval();
        int b = 16, prompt = 32;
        var rng = new Generator(3);
        var ids = new long[b * prompt];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(c.VocabSize);
        var times = new Dictionary<string, double>();
        var order = new List<string>();
        // NR_PROFILE_CLOCK=thread: main-thread CPU time per part (run with NR_NUM_THREADS=1 so every kernel
        // runs on this thread); otherwise wall-clock.
        bool cpu = Environment.GetEnvironmentVariable("NR_PROFILE_CLOCK") == "thread";
        double mark = 0;
        double Now() => cpu ? ThreadCpuMs() : Stopwatch.GetTimestamp() * 1e3 / Stopwatch.Frequency;
        void Tick(string name)
        {
            double now = Now(), ms = now - mark;
            if (!times.ContainsKey(name)) { times[name] = 0; order.Add(name); }
            times[name] += ms;
            mark = Now();
        }

        for (int round = 0; round < 2; round++)
        {
            times.Clear();
            order.Clear();
            using var cache = model.CreateCache(b, prompt + steps + 1);
            var next = new long[b];
            using (Tensor.NoGrad())
            using (var scope = new TensorScope())
            {
                var logits = model.Forward(Tensor.FromArray(ids, [b, prompt]), cache).ToArray();
                for (int i = 0; i < b; i++) next[i] = TextGeneration.Sample(logits.AsSpan((i * prompt + prompt - 1) * c.VocabSize, c.VocabSize), new GenerationOptions { Temperature = 0 }, rng);
            }
            var total = Stopwatch.StartNew();
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            int gc0 = GC.CollectionCount(0);
            var jit0 = System.Runtime.JitInfo.GetCompilationTime();
            long alloc0 = GC.GetTotalAllocatedBytes();
            int n = round == 0 ? 4 : steps;
            for (int step = 0; step < n; step++)
            {
                using var noGrad = Tensor.NoGrad();
                using var scope = new TensorScope();
                mark = Now();
                var input = Tensor.FromArray(next, [b, 1]);
                var starts = (int[])cache.Lengths.Clone();
                var positions = new int[b];
                for (int i = 0; i < b; i++) positions[i] = starts[i];
                var (cos, sin) = model.Rotary.For(positions);
                var h = model.Model.EmbedTokens.Forward(input);
                Tick("embed + rope tables");
                foreach (var layer in model.Model.Layers)
                {
                    var x = layer.InputLayerNorm.Forward(h);
                    Tick("rmsnorm (input)");
                    var a = layer.SelfAttn.ForwardAbsorbed(x, cos, sin, cache, layer.Index, starts);
                    Tick("attention (absorbed)");
                    h = h + a;
                    Tick("residual add");
                    x = layer.PostAttentionLayerNorm.Forward(h);
                    Tick("rmsnorm (post)");
                    Tensor m;
                    if (layer.Moe is { } moe)
                    {
                        var flat = x.Reshape(b, c.HiddenSize);
                        var routing = moe.Gate.Route(flat);
                        Tick("moe: gate route");
                        var (offsets, slotOrder, slotPosition) = Functional.MoePermute(routing.Indices, routing.Experts);
                        slotOrder.Dispose();
                        if (step == 0 && round == 1 && Environment.GetEnvironmentVariable("NR_PROFILE_LOAD") == "1")
                        {
                            var loads = Enumerable.Range(0, routing.Experts).Select(e => offsets[e + 1] - offsets[e]).Where(x => x > 0).ToArray();
                            Console.WriteLine($"layer {layer.Index}: {loads.Length} active experts, rows max {loads.Max()}, histogram " +
                                string.Join(" ", loads.GroupBy(x => x).OrderBy(g => g.Key).Select(g => $"{g.Key}:{g.Count()}")));
                        }
                        Tick("moe: permute");
                        var xs = Functional.MoeDispatch(flat, slotPosition, routing.TopK);
                        Tick("moe: dispatch");
                        var ys = Functional.GroupedSwiGlu(xs, offsets,
                            moe.Experts.Select(e => (Tensor)e.GateProj.Weight).ToArray(),
                            moe.Experts.Select(e => (Tensor)e.UpProj.Weight).ToArray(),
                            moe.Experts.Select(e => (Tensor)e.DownProj.Weight).ToArray());
                        Tick("moe: grouped swiglu");
                        var routed = Functional.MoeCombine(ys, slotPosition, routing.Weights);
                        Tick("moe: combine");
                        m = routed + moe.SharedExperts!.Forward(flat);
                        m = m.View(b, 1, c.HiddenSize);
                        Tick("moe: shared expert + add");
                    }
                    else
                    {
                        m = layer.DenseMlp!.Forward(x);
                        Tick("dense mlp");
                    }
                    h = h + m;
                    Tick("residual add");
                }
                for (int i = 0; i < b; i++) cache.Lengths[i] = starts[i] + 1;
                var head = Tensor.Linear(model.Model.Norm.Forward(h), model.LmHead?.Weight ?? model.Model.EmbedTokens.Weight);
                Tick("final norm + lm head");
                var l = head.ToArray();
                for (int i = 0; i < b; i++) next[i] = TextGeneration.Sample(l.AsSpan(i * c.VocabSize, c.VocabSize), new GenerationOptions { Temperature = 0 }, rng);
                Tick("to host + sample");
                scope.Dispose();
                Tick("scope dispose");
            }
            if (round == 0) continue;
            double wall = total.Elapsed.TotalMilliseconds / n, sum = times.Values.Sum() / n;
            double procCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / n;
            Console.WriteLine($"{preset} decode profile, batch {b}, {n} steps: {wall:F3} ms/step wall ({b * 1000 / wall:F0} tokens/s), process CPU {procCpu:F3} ms/step, parts sum {sum:F3} ms ({(cpu ? "main-thread CPU" : "wall")})");
            Console.WriteLine($"  per step: {(double)(GC.GetTotalAllocatedBytes() - alloc0) / n / 1024:F0} KiB managed allocation, {(double)(GC.CollectionCount(0) - gc0) / n:F2} gen0 GCs, {(System.Runtime.JitInfo.GetCompilationTime() - jit0).TotalMilliseconds / n:F3} ms JIT");
            foreach (var name in order.OrderByDescending(k => times[k]))
                Console.WriteLine($"  {name,-28} {times[name] / n,8:F3} ms  {100 * times[name] / n / sum,5:F1} %");
        }
    }
}
