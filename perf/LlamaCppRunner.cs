// Source: llama.cpp's C API (include/llama.h: llama_model_load_from_file, llama_init_from_model, llama_decode with a
// llama_batch, llama_get_logits_ith, llama_memory_clear) through LLamaSharp 0.30.0's native bindings and the prebuilt
// libllama.so of LLamaSharp.Backend.Cpu 0.30.0. Used only by the perf project, never by src/.
using System.Diagnostics;
using LLama.Native;

namespace NativeReasoner.Perf;

/// <summary>llama.cpp on one GGUF file: prefill, decode at batch B, and every position's logits.</summary>
public sealed class LlamaCppRunner : IDisposable
{
    private readonly SafeLlamaModelHandle _model;
    private readonly SafeLLamaContextHandle _context;
    private readonly LLamaBatch _batch = new();
    public int VocabSize { get; }

    /// <param name="exactAttention">
    /// Flash attention off: llama.cpp's CPU flash attention rounds through f16 (logits differ ~1e-3 relative), so the
    /// F32 logits check runs without it; the timings use llama.cpp's default (auto, on for CPU).
    /// </param>
    public LlamaCppRunner(string gguf, int threads, int contextTokens, int maxSequences, bool exactAttention)
    {
        // Quiet: llama.cpp logs every load and graph reservation. Set before the library loads, once.
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded) NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        // Touching NativeApi first installs LLamaSharp's resolver, which picks runtimes/linux-x64/native/<avx level>/.
        NativeApi.llama_empty_call();
        var modelParams = LLamaModelParams.Default();
        modelParams.n_gpu_layers = 0;
        _model = SafeLlamaModelHandle.LoadFromFile(gguf, modelParams);
        var p = LLamaContextParams.Default();
        p.n_ctx = (uint)contextTokens;
        p.n_batch = (uint)contextTokens;
        p.n_ubatch = p.n_batch;
        p.n_seq_max = (uint)maxSequences;
        // One cache shared by all sequences (else each gets n_ctx / n_seq_max positions).
        p.kv_unified = true;
        p.n_threads = threads;
        p.n_threads_batch = threads;
        // A float32 KV cache like this engine's (llama.cpp defaults to f16), so the logits compare at F32.
        p.type_k = GGMLType.GGML_TYPE_F32;
        p.type_v = GGMLType.GGML_TYPE_F32;
        if (exactAttention) p.llama_flash_attn_type = LLamaFlashAttentionType.LLAMA_FLASH_ATTENTION_TYPE_DISABLED;
        _context = SafeLLamaContextHandle.Create(_model, p);
        VocabSize = _model.Vocab.Count;
    }

    private void Decode()
    {
        var result = _context.Decode(_batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode failed: {result}");
        _context.Synchronize();
    }

    /// <summary>Logits of every position of one sequence: [T, V] row-major.</summary>
    public float[] Logits(int[] tokens)
    {
        _context.MemoryClear(true);
        _batch.Clear();
        for (int t = 0; t < tokens.Length; t++) _batch.Add(tokens[t], t, (LLamaSeqId)0, true);
        Decode();
        var result = new float[tokens.Length * VocabSize];
        for (int t = 0; t < tokens.Length; t++)
            _context.GetLogitsIth(t).CopyTo(result.AsSpan(t * VocabSize, VocabSize));
        return result;
    }

    /// <summary>Seconds to prefill <paramref name="tokens"/> (one sequence, the last position's logits).</summary>
    public double Prefill(int[] tokens)
    {
        _context.MemoryClear(true);
        _batch.Clear();
        for (int t = 0; t < tokens.Length; t++) _batch.Add(tokens[t], t, (LLamaSeqId)0, t == tokens.Length - 1);
        var sw = Stopwatch.StartNew();
        Decode();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Prefills <paramref name="prompts"/> (one sequence each) untimed, then times <paramref name="steps"/> decode
    /// steps of one token per sequence (greedy on the logits, so the work is a real generation). Returns tokens/s.
    /// </summary>
    public double DecodeTokensPerSecond(int[][] prompts, int steps)
    {
        _context.MemoryClear(true);
        _batch.Clear();
        int b = prompts.Length;
        var outputIndex = new int[b];
        for (int s = 0; s < b; s++)
            for (int t = 0; t < prompts[s].Length; t++)
            {
                bool last = t == prompts[s].Length - 1;
                if (last) outputIndex[s] = _batch.TokenCount;
                _batch.Add(prompts[s][t], t, (LLamaSeqId)s, last);
            }
        Decode();
        var next = new int[b];
        for (int s = 0; s < b; s++) next[s] = ArgMax(_context.GetLogitsIth(outputIndex[s]));
        var sw = Stopwatch.StartNew();
        for (int step = 0; step < steps; step++)
        {
            _batch.Clear();
            for (int s = 0; s < b; s++) _batch.Add(next[s], prompts[s].Length + step, (LLamaSeqId)s, true);
            Decode();
            for (int s = 0; s < b; s++) next[s] = ArgMax(_context.GetLogitsIth(s));
        }
        return b * steps / sw.Elapsed.TotalSeconds;
    }

    private static int ArgMax(Span<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        _context.Dispose();
        _model.Dispose();
    }
}
