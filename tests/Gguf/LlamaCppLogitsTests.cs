using LLama.Native;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using NativeReasoner.Model.Gguf;
using NativeReasoner.Tests.Model;
using NativeReasoner.Tests.RL.Tokenizers;
using Xunit;

namespace NativeReasoner.Tests.Gguf;

/// <summary>
/// llama.cpp as the oracle of the GGUF export: a small random model of each dense architecture, exported at F32 with a
/// real tokenizer, run by llama.cpp (NuGet LLamaSharp.Backend.Cpu's libllama.so, test-only) and by this engine from the
/// same file: every position's logits agree to 1e-4 of their scale. This checks what a round trip through our own
/// reader cannot: the metadata keys, tensor names and llama's q/k row order as llama.cpp reads them.
/// </summary>
public sealed class LlamaCppLogitsTests : IDisposable
{
    private readonly string _dir = ModelTestUtil.TempDir();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    [InlineData("qwen3")]
    public void F32Gguf_LogitsMatchLlamaCpp(string modelType)
    {
        string source = RealTokenizers.Unpack(RealTokenizers.Qwen3);
        string gguf = Path.Combine(_dir, modelType + ".gguf");
        var json = System.Text.Json.Nodes.JsonNode.Parse($$"""
            {"model_type": "{{modelType}}", "vocab_size": 151669, "hidden_size": 64, "intermediate_size": 96,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
             "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
             "tie_word_embeddings": false, "eos_token_id": 151645}
            """)!.AsObject();
        if (modelType == "llama")
            json["rope_scaling"] = System.Text.Json.Nodes.JsonNode.Parse("""
                {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                 "original_max_position_embeddings": 64}
                """);
        var config = CausalLMRegistry.ParseConfig(json.ToJsonString());
        using var model = config.Build(new Generator(11));
        try
        {
            GgufExporter.Export(model, gguf, GgmlType.F32, modelType, File.ReadAllText(Path.Combine(source,
                "tokenizer.json")), File.ReadAllText(Path.Combine(source, "tokenizer_config.json")));
        }
        finally
        {
            Directory.Delete(source, true);
        }
        int[] tokens =
            [9707, 11, 1879, 0, 151644, 872, 198, 3838, 374, 220, 17, 10, 17, 30, 151645, 198, 151644, 77091];
        float[] ours;
        using (var fromGguf = CausalLMRegistry.Load(gguf))
        using (var scope = new TensorScope())
            ours = fromGguf.Forward(Tensor.FromArray(tokens.Select(t => (long)t).ToArray(), 1, tokens.Length))
                .ToArray();
        float[] theirs = LlamaCppLogits(gguf, tokens, config.VocabSize);
        Assert.DoesNotContain(ours, float.IsNaN);
        double rel = ModelTestUtil.RelError(ours, theirs);
        Assert.True(rel <= 1e-4, $"{modelType}: max |ours − llama.cpp| / max |llama.cpp| = {rel:E2}");
    }

    private static float[] LlamaCppLogits(string gguf, int[] tokens, int vocab)
    {
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded) NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        NativeApi.llama_empty_call();
        var modelParams = LLamaModelParams.Default();
        modelParams.n_gpu_layers = 0;
        using var model = SafeLlamaModelHandle.LoadFromFile(gguf, modelParams);
        Assert.Equal(vocab, model.Vocab.Count);
        var p = LLamaContextParams.Default();
        p.n_ctx = 64;
        p.n_batch = 64;
        p.n_ubatch = 64;
        p.n_threads = 2;
        p.n_threads_batch = 2;
        // float32 attention end to end: llama.cpp's CPU flash attention and its default f16 cache round to f16.
        p.type_k = GGMLType.GGML_TYPE_F32;
        p.type_v = GGMLType.GGML_TYPE_F32;
        p.llama_flash_attn_type = LLamaFlashAttentionType.LLAMA_FLASH_ATTENTION_TYPE_DISABLED;
        using var context = SafeLLamaContextHandle.Create(model, p);
        var batch = new LLamaBatch();
        for (int t = 0; t < tokens.Length; t++) batch.Add(tokens[t], t, (LLamaSeqId)0, true);
        Assert.Equal(DecodeResult.Ok, context.Decode(batch));
        var result = new float[tokens.Length * vocab];
        for (int t = 0; t < tokens.Length; t++) context.GetLogitsIth(t).CopyTo(result.AsSpan(t * vocab, vocab));
        return result;
    }
}
