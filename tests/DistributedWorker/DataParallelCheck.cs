using NativeReasoner.Distributed;
using NativeReasoner.Model;
using NativeReasoner.RL;

namespace NativeReasoner.DistributedWorker;

/// <summary>
/// Data parallelism equals one process: N ranks × (batch / N) examples for 5 AdamW steps of SFT on the tiny
/// DeepSeek-V3 (MoE, so some experts get gradients on one rank only) leave every parameter within 1e-5 (relative to
/// the tensor's largest magnitude) of one process over the whole batch, with the same losses; and all ranks end
/// bit-identical. Completions differ in length, so the ranks hold different numbers of loss tokens.
/// </summary>
internal static class DataParallelCheck
{
    private const int Batch = 12, Steps = 5;
    private const float LearningRate = 1e-3f;

    public static List<string> Run(IProcessGroup g)
    {
        var failures = new List<string>();
        if (Batch % g.Size != 0) return [$"batch {Batch} does not divide over {g.Size} ranks"];
        var (parallel, parallelLosses) = Train(g);
        // Every rank took the same steps: rank 0's parameters, broadcast, equal each rank's to the bit.
        using (var mine = Tensor.FromArray(parallel, parallel.Length))
        using (var root = Tensor.FromArray(parallel, parallel.Length))
        {
            g.Broadcast(root, 0);
            var r = root.ToArray();
            int differing = Enumerable.Range(0, r.Length).Count(i
                => BitConverter.SingleToInt32Bits(r[i]) != BitConverter.SingleToInt32Bits(parallel[i]));
            if (differing > 0) failures.Add($"{differing} parameters differ from rank 0's after {Steps} " +
                $"data-parallel steps");
        }
        if (g.Rank != 0) return failures;
        var (single, singleLosses) = Train(new LocalProcessGroup());
        for (int s = 0; s < Steps; s++)
            if (!(Math.Abs(parallelLosses[s] - singleLosses[s]) <= 1e-5 * Math.Abs(singleLosses[s])))
                failures.Add($"step {s
                    + 1}: loss {parallelLosses[s]} over {g.Size} ranks, {singleLosses[s]} in one process");
        double worst = 0;
        string worstName = "";
        foreach (var (name, offset, length) in Layout())
        {
            double scale = 0, diff = 0;
            for (int i = offset; i < offset + length; i++)
            {
                scale = Math.Max(scale, Math.Abs(single[i]));
                diff = Math.Max(diff, Math.Abs(single[i] - parallel[i]));
            }
            double relative = diff / Math.Max(scale, 1e-12);
            if (!(relative <= worst)) (worst, worstName) = (relative, name);
        }
        Console.WriteLine($"data-parallel over {g.Size} ranks vs one process after {Steps} AdamW steps: " +
                          $"largest relative parameter difference {worst:E2} ({worstName})");
        if (!(worst <= 1e-5)) failures.Add($"parameter {worstName} differs by {worst:E2} (relative) from one process");
        return failures;
    }

    private static readonly CharTokenizer Tokenizer = new();
    private static readonly PromptTemplate Template = new("<|bos|>{question}\n");

    private static ICausalLM Build() =>
        DeepseekV3Config.Preset("tiny").ForTokenizer(Tokenizer.VocabSize, Tokenizer.EosId, Tokenizer.BosId,
            Tokenizer.PadId)
            .Build(new Generator(7));

    private static List<(string Name, int Offset, int Length)> Layout()
    {
        using var model = Build();
        var layout = new List<(string, int, int)>();
        int offset = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            layout.Add((name, offset, (int)p.Numel));
            offset += (int)p.Numel;
        }
        return layout;
    }

    /// <summary>SFT for <see cref="Steps"/> steps on this rank's share of each batch; all parameters,
    /// flattened.</summary>
    private static (float[] Parameters, float[] Losses) Train(IProcessGroup g)
    {
        using var model = Build();
        var policy = new CausalLMPolicy(model);
        using var trainer = new SftTrainer(policy, Tokenizer, Template, LearningRate, Steps, weightDecay: 0.01f,
            group: g);
        model.Train();
        var losses = new float[Steps];
        int share = Batch / g.Size;
        for (int s = 0; s < Steps; s++)
        {
            var rng = new Generator(100 + (ulong)s);
            var batch = Enumerable.Range(0, Batch).Select(_ =>
            {
                int a = rng.NextInt(50), b = rng.NextInt(50), pad = rng.NextInt(6);
                return new SftExample($"{a}+{b}", new string(' ', pad) + $"\\boxed{{{a + b}}}");
            }).ToArray();
            losses[s] = trainer.Step(batch[(g.Rank * share)..((g.Rank + 1) * share)]);
        }
        return (model.NamedParameters().SelectMany(p => p.Param.ToArray()).ToArray(), losses);
    }
}
