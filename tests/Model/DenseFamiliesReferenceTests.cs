using NativeReasoner.IO;
using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Model;

/// <summary>
/// Against tests/reference/dense_families.py (PyTorch modules written from HF's modeling_qwen2/llama/qwen3 and
/// modeling_rope_utils): full logits, cached decode logits (prefill P, then one token at a time through the GQA
/// K/V cache) and every parameter's gradient of the cross-entropy, ≤ 1e-4 relative. qwen2: q/k/v biases, yarn
/// (rope_scaling keyed by "type"); llama: MQA (1 K/V head), llama3 scaling (keyed by "rope_type"); qwen3: explicit
/// head_dim, q_norm/k_norm, tied embeddings, linear scaling in transformers ≥ 5's rope_parameters; qwen3_moe: a dense
/// layer (mlp_only_layers) and two sparse ones (softmax router, top-2 of 8, norm_topk_prob).
/// </summary>
public sealed class DenseFamiliesReferenceTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Families => new()
    {
        { "qwen2-tiny-ref", "qwen2" },
        { "llama-tiny-ref", "llama" },
        { "qwen3-tiny-ref", "qwen3" },
        { "qwen3-moe-tiny-ref", "qwen3_moe" },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void LogitsLossAndGradientsMatchPyTorch(string fixture, string modelType)
    {
        string dir = Fixture(fixture), expected = Path.Combine(dir, "expected.safetensors");
        using var file = SafetensorsFile.Open(expected);
        var (ids, b, t) = ReadIds(expected, "input_ids");
        var (targets, _, _) = ReadIds(expected, "targets");
        using var model = CausalLMRegistry.Load(dir);
        Assert.IsType<DenseForCausalLM>(model);
        Assert.Equal(modelType, model.Config.ModelType);
        model.Train();
        int v = model.Config.VocabSize;
        using (var scope = new TensorScope())
        {
            var logits = model.Forward(Tensor.FromArray(ids, [b, t]));
            double logitErr = RelError(logits.ToArray(), file.ReadFloat32("logits"));
            var loss = Functional.CrossEntropy(logits.View(b * t, v), Tensor.FromArray(targets, [b * t]));
            double lossErr = RelError([loss.Item()], file.ReadFloat32("loss"));
            loss.Backward();
            output.WriteLine($"{modelType}: logits {logitErr:E3}, loss {lossErr:E3}");
            Assert.True(logitErr <= 1e-4, $"logits: {logitErr:E3}");
            Assert.True(lossErr <= 1e-4, $"loss: {lossErr:E3}");
        }
        double worst = 0;
        int count = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            var want = file.ReadFloat32("grad." + name);
            // An expert that no token chose has no gradient; PyTorch's is written as zeros.
            double err = RelError(p.Grad?.ToArray() ?? new float[want.Length], want);
            Assert.True(err <= 1e-4, $"grad of {name}: relative error {err:E3}");
            worst = Math.Max(worst, err);
            count++;
        }
        output.WriteLine($"gradients of {count} parameters: worst relative error {worst:E3}");
        Assert.Equal(file.Entries.Count(e => e.Name.StartsWith("grad.", StringComparison.Ordinal)), count);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void CachedDecodeMatchesPyTorch(string fixture, string modelType)
    {
        string dir = Fixture(fixture), expected = Path.Combine(dir, "expected.safetensors");
        using var file = SafetensorsFile.Open(expected);
        int p = int.Parse(file.Metadata["prefill"], System.Globalization.CultureInfo.InvariantCulture);
        var (ids, b, t) = ReadIds(expected, "input_ids");
        using var model = CausalLMRegistry.Load(dir);
        model.Eval();
        var decoded = LogitsRunner.Run(model, ids, b, t, decodeFrom: p);
        double err = RelError(decoded, file.ReadFloat32("decode_logits"));
        output.WriteLine($"{modelType}: cached decode from {p} vs PyTorch: {err:E3}");
        Assert.True(err <= 1e-4, $"{err:E3}");
    }

    [Fact]
    public void Qwen3TiedHeadHasNoLmHeadAndReadsItsConfigSpellings()
    {
        using var qwen3 = (DenseForCausalLM)CausalLMRegistry.Load(Fixture("qwen3-tiny-ref"));
        Assert.Null(qwen3.LmHead);
        Assert.DoesNotContain(qwen3.NamedParameters(), np => np.Name == "lm_head.weight");
        Assert.Equal(12, qwen3.Config.HeadDim);                      // explicit, not 32 / 4
        Assert.Equal("linear", qwen3.Config.Rope.Type);
        Assert.Equal(1000000.0, qwen3.Config.Rope.Theta);           // from rope_parameters
        Assert.Equal([2L, 3L], qwen3.Config.EosTokenIds);
        using var qwen2 = (DenseForCausalLM)CausalLMRegistry.Load(Fixture("qwen2-tiny-ref"));
        Assert.Equal("yarn", qwen2.Config.Rope.Type);
        Assert.True(qwen2.Rotary.AttentionFactor > 1f);               // 0.1 ln 4 + 1
        Assert.NotNull(qwen2.Model.Layers[0].SelfAttn.QProj.Bias);
        Assert.Null(qwen2.Model.Layers[0].SelfAttn.OProj.Bias);
        using var llama = (DenseForCausalLM)CausalLMRegistry.Load(Fixture("llama-tiny-ref"));
        Assert.Equal("llama3", llama.Config.Rope.Type);
        Assert.Equal(1, llama.Config.NumKeyValueHeads);
        Assert.Null(llama.Model.Layers[0].SelfAttn.QProj.Bias);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void SaveThenLoadGivesTheSameLogits(string fixture, string modelType)
    {
        var (ids, b, t) = ReadIds(Path.Combine(Fixture(fixture), "expected.safetensors"), "input_ids");
        using var model = CausalLMRegistry.Load(Fixture(fixture));
        var dir = TempDir();
        try
        {
            model.Save(dir);
            using var back = CausalLMRegistry.Load(dir);
            Assert.Equal(modelType, back.Config.ModelType);
            using var scope = new TensorScope();
            using var noGrad = Tensor.NoGrad();
            var input = Tensor.FromArray(ids, [b, t]);
            Assert.Equal(model.Forward(input).ToArray(), back.Forward(input).ToArray());
            using var file = SafetensorsFile.Open(Path.Combine(dir, "model.safetensors"));
            Assert.Equal(modelType != "qwen3", file.Contains("lm_head.weight"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
