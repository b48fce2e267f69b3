using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using NativeReasoner.Model;
using NativeReasoner.Optim;

namespace NativeReasoner.Perf;

/// <summary>
/// Runs <paramref name="body"/> until at least <paramref name="seconds"/> have passed and at least
/// <paramref name="minCalls"/> calls were made. The short job's 3 warm-up iterations are one call each for
/// a 100–400 ms body, but .NET's tiered JIT needs ~30 calls of a method (and a background compile on one of
/// the two cores) before the optimised code runs; the model's per-layer methods are called only a few
/// times per step, so without this the measured iterations would still contain tier-0 code and JIT work
/// (see the remarks on <see cref="ModelBenchmark"/>).
/// </summary>
internal static class JitWarmup
{
    public static void Run(Action body, double seconds, int minCalls = 3)
    {
        var clock = Stopwatch.StartNew();
        for (int calls = 0; calls < minCalls || clock.Elapsed.TotalSeconds < seconds; calls++) body();
    }
}

/// <summary>
/// The bench-tiny MoE block (256 routed experts of width 32, top-8 of 4 kept groups, 1 shared expert) on
/// 16 × 128 = 2048 tokens of hidden 128: the router, the expert permutation, the grouped SwiGLU GEMMs and
/// the weighted combine. Tokens/s = 2048 / mean.
/// </summary>
[Config(typeof(ShortConfig))]
public class MoeLayerBenchmarks
{
    private const int Batch = 16, Seq = 128;

    private MoeLayer _moe = null!;
    private Tensor _x = null!, _w = null!;

    [GlobalSetup(Target = nameof(Forward))]
    public void SetupForward()
    {
        Create();
        JitWarmup.Run(Forward, seconds: 2);
    }

    [GlobalSetup(Target = nameof(ForwardBackward))]
    public void SetupForwardBackward()
    {
        Create();
        JitWarmup.Run(ForwardBackward, seconds: 3);
    }

    private void Create()
    {
        var c = DeepseekV3Config.Preset("bench-tiny");
        _moe = new MoeLayer(c, new Generator(1));
        var gen = new Generator(2);
        // Created with no scope open: owned here and freed in the cleanup, not by an iteration's scope.
        // MoeLayer.Forward takes [B, T, hidden] (it flattens to tokens itself). Unit-variance inputs give
        // the router a realistic spread of expert choices (the load per expert sets the grouped GEMM sizes).
        _x = Tensor.Randn([Batch, Seq, c.HiddenSize], gen);
        // loss = Σ y·w with a fixed random w rather than Σ y: the gradient reaching the experts is then
        // not the same constant for every row, as in a real backward (the cost is the same either way).
        _w = Tensor.Randn([Batch, Seq, c.HiddenSize], gen);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _moe.Dispose();
        _x.Dispose();
        _w.Dispose();
    }

    /// <summary>Inference forward: no graph is recorded, every temporary is freed with the scope.</summary>
    [Benchmark]
    public void Forward()
    {
        using var noGrad = Tensor.NoGrad();
        using var scope = new TensorScope();
        _moe.Forward(_x);
    }

    /// <summary>
    /// Forward with the graph, loss = Σ y·w, backward into the layer's parameters and the input; the
    /// gradients are dropped after each call so every call starts from none (a fresh allocation, as in a
    /// training step after ZeroGrad) and nothing accumulates across iterations.
    /// </summary>
    [Benchmark]
    public void ForwardBackward()
    {
        _x.RequiresGrad_();
        using (var scope = new TensorScope())
        {
            var y = _moe.Forward(_x);
            (y * _w).Sum().Backward();
        }
        _moe.ZeroGrad();
        _x.ZeroGrad();
    }
}

/// <summary>
/// The bench-tiny model (4 layers, first dense, 3 MoE): one training step on 16 × 128 tokens and one
/// batch-16 decode step through the compressed MLA cache. Tokens/s = 2048 / TrainingStep mean and
/// 16 / DecodeStep mean (perf/results/bdn-model-*.md states both).
/// </summary>
[Config(typeof(ShortConfig))]
public class BenchTinyModelBenchmarks
{
    private const int Batch = 16, Seq = 128, Prompt = 64;

    private DeepseekV3Config _c = null!;
    private DeepseekV3ForCausalLM _model = null!;

    // Training state.
    private AdamW? _opt;
    private long[] _input = [], _target = [];

    // Decode state.
    private MlaCache? _cache;
    private long[] _next = [], _sampled = [];
    private readonly GenerationOptions _greedy = new() { Temperature = 0 };
    private readonly Generator _sampleRng = new(4);

    [GlobalSetup(Target = nameof(TrainingStep))]
    public void SetupTraining()
    {
        // The same model, optimiser and data as ModelBenchmark.MeasureTraining (seeds 1 and 2), so these
        // numbers and `nr bench model` / `NativeReasoner.Perf model` measure the same work.
        _c = DeepseekV3Config.Preset("bench-tiny");
        _model = new DeepseekV3ForCausalLM(_c, new Generator(1));
        _opt = new AdamW(_model.Parameters(), lr: 1e-3f);
        (_input, _target) = ModelBenchmark.RandomNextTokenBatch(_c.VocabSize, Batch, Seq, new Generator(2));
        JitWarmup.Run(TrainingStep, seconds: 5);
    }

    /// <summary>One step exactly as ModelBenchmark.MeasureTraining times it (ModelBenchmark.TrainingStep).</summary>
    [Benchmark]
    public void TrainingStep() => ModelBenchmark.TrainingStep(_model, _opt!, _input, _target, Batch, Seq);

    [GlobalSetup(Target = nameof(DecodeStep))]
    public void SetupDecode()
    {
        _c = DeepseekV3Config.Preset("bench-tiny");
        _model = new DeepseekV3ForCausalLM(_c, new Generator(1));
        _model.Eval();
        // Room for the prompt and one decoded position: every call writes position Prompt and is then
        // rolled back (see DecodeStep), so the cache never needs more.
        _cache = _model.CreateCache(Batch, Prompt + 1);
        var rng = new Generator(3);
        var ids = new long[Batch * Prompt];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(_c.VocabSize);
        _next = new long[Batch];
        _sampled = new long[Batch];
        // The prefill, as TextGeneration.Generate does it: all prompt positions in one causal forward that
        // fills the cache, the head on each sequence's last position only, whose logits give the first token.
        using (Tensor.NoGrad())
        using (var scope = new TensorScope())
        {
            var logits = _model.ForwardLast(Tensor.FromArray(ids, [Batch, Prompt]), _cache, default).ToArray();
            for (int i = 0; i < Batch; i++)
                _next[i] = TextGeneration.Sample(logits.AsSpan(i * _c.VocabSize, _c.VocabSize), _greedy, _sampleRng);
        }
        JitWarmup.Run(DecodeStep, seconds: 3, minCalls: 30);
    }

    /// <summary>
    /// One decode step for 16 sequences as in TextGeneration.Generate: the next token of each sequence
    /// through ForwardCached (absorbed MLA over the 64 cached positions plus the new one), the logits back
    /// to the host, greedy sampling.
    /// </summary>
    /// <remarks>
    /// A real decode grows the cache by one position per step, so repeated calls would get slower and
    /// overflow it. MlaCache.Lengths is the only thing that says how much of the cache is valid, so after
    /// each step the lengths are set back to the prompt length: the next call overwrites the same position
    /// and attends over the same 65 positions, and every call does identical work (a decode step at context
    /// 65), with no re-prefill and no [IterationSetup] (which BDN only runs around single-invocation
    /// iterations). The input tokens are also kept fixed (the prefill's greedy picks) rather than fed back,
    /// so the router sends every call's tokens to the same experts and the per-call cost does not wander
    /// with the expert load; the sampled tokens are computed and discarded.
    /// </remarks>
    [Benchmark]
    public void DecodeStep()
    {
        using (var scope = new TensorScope())
        {
            var logits = _model.ForwardCached(Tensor.FromArray(_next, [Batch, 1]), _cache!).ToArray();
            for (int i = 0; i < Batch; i++)
                _sampled[i] = TextGeneration.Sample(logits.AsSpan(i * _c.VocabSize, _c.VocabSize), _greedy, _sampleRng);
        }
        Array.Fill(_cache!.Lengths, Prompt);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _opt?.Dispose();
        _opt = null;
        _cache?.Dispose();
        _cache = null;
        _model.Dispose();
    }
}
