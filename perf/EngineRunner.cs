using System.Diagnostics;
using NativeReasoner.Kernels.Quant;
using NativeReasoner.Model;
using NativeReasoner.Nn;

namespace NativeReasoner.Perf;

/// <summary>This engine on one GGUF file, with the same measurements as <see cref="LlamaCppRunner"/>.</summary>
public sealed class EngineRunner : IDisposable
{
    private readonly ICausalLM _model;
    public int VocabSize => _model.Config.VocabSize;
    public long WeightBytes { get; }

    /// <summary>Weight bytes a batch-1 decode step reads per token, as held after the load (and the pack).</summary>
    public long DecodeBytesPerToken => DecodeWeightTraffic.PerToken(_model).Total;

    /// <summary>The format the weights were packed in after the load (<paramref name="pack"/>), else null.</summary>
    public QuantFormat? PackedAs { get; }

    /// <param name="pack">
    /// Packs what the load left unpacked in this format so the packed kernels run: quantised GGUF tensors already
    /// load packed as stored (Pack skips packed weights), while F16/BF16 matrices load 16-bit and become packed bf16
    /// rows here.
    /// </param>
    public EngineRunner(string gguf, QuantFormat? pack = null)
    {
        _model = CausalLMRegistry.Load(gguf, Device.Cpu, CheckpointLoadOptions.Inference, out var report);
        _model.Eval();
        WeightBytes = report.WeightBytes;
        if (pack is { } format)
        {
            PackedWeights.Pack((Module)_model, format);
            PackedAs = format;
        }
    }

    /// <summary>Logits of every position of one sequence: [T, V] row-major.</summary>
    public float[] Logits(int[] tokens)
    {
        using var scope = new TensorScope();
        using var noGrad = Tensor.NoGrad();
        var ids = Tensor.FromArray(tokens.Select(t => (long)t).ToArray(), 1, tokens.Length);
        return _model.Forward(ids).ToArray();
    }

    public double Prefill(int[] tokens)
    {
        using var cache = _model.CreateCache(1, tokens.Length + 1);
        using var scope = new TensorScope();
        using var noGrad = Tensor.NoGrad();
        var ids = Tensor.FromArray(tokens.Select(t => (long)t).ToArray(), 1, tokens.Length);
        var sw = Stopwatch.StartNew();
        // The last position's logits only, as llama.cpp returns them.
        _ = _model.ForwardLast(ids, cache, default).ToArray();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Prefills every prompt (equal lengths) untimed, then times greedy decode steps. Returns
    /// tokens/s.</summary>
    public double DecodeTokensPerSecond(int[][] prompts, int steps)
    {
        int b = prompts.Length, p = prompts[0].Length;
        using var cache = _model.CreateCache(b, p + steps + 1);
        using var noGrad = Tensor.NoGrad();
        long[] next;
        using (var scope = new TensorScope())
        {
            var ids = Tensor.FromArray(prompts.SelectMany(x => x.Select(t => (long)t)).ToArray(), b, p);
            next = ArgMaxLast(_model.ForwardLast(ids, cache, default), b);
        }
        var sw = Stopwatch.StartNew();
        for (int step = 0; step < steps; step++)
        {
            using var scope = new TensorScope();
            next = ArgMaxLast(_model.ForwardCached(Tensor.FromArray(next, b, 1), cache), b);
        }
        return b * steps / sw.Elapsed.TotalSeconds;
    }

    private long[] ArgMaxLast(Tensor logits, int b)
    {
        int t = logits.Shape[1], v = logits.Shape[2];
        var last = logits.Narrow(1, t - 1, 1).ToArray();
        var result = new long[b];
        for (int s = 0; s < b; s++)
        {
            int best = 0;
            for (int i = 1; i < v; i++) if (last[s * v + i] > last[s * v + best]) best = i;
            result[s] = best;
        }
        return result;
    }

    public void Dispose() => _model.Dispose();
}
