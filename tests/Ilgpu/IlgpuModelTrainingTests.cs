using NativeReasoner.Model;
using Xunit;
using Xunit.Abstractions;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Ilgpu;

/// <summary>
/// The whole DeepSeek-V3 model on the ilgpu device against the CPU backend: every parameter's gradient of
/// a next-token loss (forward and backward through MLA and MoE), and greedy generation through the
/// compressed cache.
/// </summary>
public sealed class IlgpuModelTrainingTests(ITestOutputHelper output)
{
    private static DeepseekV3ForCausalLM Build(Device device) =>
        new(DeepseekV3Config.Preset("tiny"), new Generator(7), device);

    private static long[] Ids(int b, int t, int vocab)
    {
        var g = new Generator(11);
        var ids = new long[b * t];
        for (int i = 0; i < ids.Length; i++) ids[i] = 2 + g.NextInt(vocab - 2);
        return ids;
    }

    [Fact]
    public void GradientsOfEveryParameterMatchCpu()
    {
        using var cpu = Build(Device.Cpu);
        using var gpu = Build(Device.Ilgpu);
        var ids = Ids(2, 12, cpu.Config.VocabSize);
        var grads = new List<Dictionary<string, float[]>>();
        foreach (var model in new[] { cpu, gpu })
        {
            var device = model.Parameters().First().Device;
            using var scope = new TensorScope();
            var input = Tensor.FromArray(ids, [2, 12], device);
            var logits = model.Forward(input);                                 // [2, 12, V]
            var inputs = logits.Narrow(1, 0, 11).Reshape(-1, model.Config.VocabSize);
            var targets = input.Narrow(1, 1, 11).Reshape(-1);
            var loss = Functional.CrossEntropy(inputs, targets);
            model.ZeroGrad();
            loss.Backward();
            grads.Add(model.NamedParameters().Where(p => p.Param.Grad != null)
                .ToDictionary(p => p.Name, p => p.Param.Grad!.ToArray()));
        }
        Assert.Equal(grads[0].Keys.Order(), grads[1].Keys.Order());
        Assert.NotEmpty(grads[0]);
        double worst = 0;
        foreach (var (name, g) in grads[0])
        {
            double e = RelError(grads[1][name], g);
            worst = Math.Max(worst, e);
            Assert.True(e <= 1e-4, $"{name}: relative error {e:E3} between ilgpu and cpu");
        }
        output.WriteLine($"{grads[0].Count} parameter gradients, worst relative error ilgpu vs cpu {worst:E3}");
    }

    [Fact]
    public void GreedyGenerationMatchesCpu()
    {
        var results = new List<IReadOnlyList<long[]>>();
        foreach (var device in new[] { Device.Cpu, Device.Ilgpu })
        {
            using var model = Build(device);
            using var scope = new TensorScope();
            var prompts = new[] { new long[] { 3, 9, 14, 2, 7 }, new long[] { 5, 6 } };
            var options = new GenerationOptions { MaxNewTokens = 8, Temperature = 0f, EosTokenIds = [] };
            results.Add(TextGeneration.Generate(model, prompts, options, new Generator(1)).Tokens);
        }
        for (int i = 0; i < results[0].Count; i++)
            Assert.Equal(results[0][i], results[1][i]);
    }
}
