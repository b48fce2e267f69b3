using NativeReasoner.Distributed;
using NativeReasoner.Model;

namespace NativeReasoner.DistributedWorker;

/// <summary>
/// Expert parallelism against the single-process layer: every rank builds the same full MoeLayer and the whole
/// batch; the reference runs the whole batch in one process, the expert-parallel layer (sharing its weights)
/// runs this rank's slice of it with this rank's experts. Forward, input gradients, expert gradients, the
/// replicated gate's and shared expert's gradients summed over the ranks, the global load and the bias step
/// must match (≤ 1e-5). A config whose experts the group does not divide must be refused before any exchange.
/// </summary>
internal static class ExpertParallelCheck
{
    private const int BatchPerRank = 2, SeqLen = 5;

    public static DeepseekV3Config Config(int experts, int groups = 2) => new DeepseekV3Config
    {
        VocabSize = 64, HiddenSize = 24, IntermediateSize = 32, MoeIntermediateSize = 12,
        NumHiddenLayers = 2, FirstKDenseReplace = 1, NumAttentionHeads = 2, NumKeyValueHeads = 2,
        NRoutedExperts = experts, NSharedExperts = 1, NumExpertsPerTok = 2, NGroup = groups, TopkGroup = groups,
        RoutedScalingFactor = 2.5, QLoraRank = 16, KvLoraRank = 16, QkNopeHeadDim = 8, QkRopeHeadDim = 8,
        VHeadDim = 8, MaxPositionEmbeddings = 128,
        // Wide router weights: the top-k has clear winners, so no near-tie decides a test.
        InitializerRange = 0.3,
    }.Validate();

    public static List<string> Run(IProcessGroup g)
    {
        var failures = new List<string>();
        int p = g.Size, me = g.Rank;
        using var scope = new TensorScope();
        var c = Config(6);
        var full = new MoeLayer(c, new Generator(17));
        full.Train();
        // A non-zero bias, so the selection uses it (the aux-loss-free rule adds it to the scores).
        full.Gate.ScoreCorrectionBias!.CopyFrom_(Tensor.Randn([6], new Generator(5), 0.1f));
        int rows = p * BatchPerRank;
        var xAll = Tensor.Randn([rows, SeqLen, c.HiddenSize], new Generator(3));
        var weightAll = Tensor.Randn([rows, SeqLen, c.HiddenSize], new Generator(4));   // loss = Σ y ⊙ w

        // The reference: one process, the whole batch.
        var xRef = xAll.Detach().RequiresGrad_();
        var yRef = full.Forward(xRef);
        (yRef * weightAll).Sum().Backward();
        var refGrads = full.NamedParameters().ToDictionary(np => np.Name, np => GradOrZeros(np.Param));
        var refLoad = full.AccumulatedLoad.ToArray();
        full.ZeroGrad();

        // Expert-parallel: this rank's rows.
        var ep = ExpertParallelMoeLayer.FromLayer(full, c, g);
        var xMine = xAll.Narrow(0, me * BatchPerRank, BatchPerRank).Contiguous().Detach().RequiresGrad_();
        var y = ep.Forward(xMine);
        (y * weightAll.Narrow(0, me * BatchPerRank, BatchPerRank)).Sum().Backward();

        Compare(failures, "forward", y.ToArray(), yRef.Narrow(0, me * BatchPerRank, BatchPerRank).ToArray());
        Compare(failures, "input gradient", xMine.Grad!.ToArray(),
            xRef.Grad!.Narrow(0, me * BatchPerRank, BatchPerRank).ToArray());
        for (int j = 0; j < ep.LocalExpertCount; j++)
            foreach (var (name, param) in ep.LocalExperts[j].NamedParameters())
            {
                var key = $"experts.{ep.FirstExpert + j}.{name}";
                Compare(failures, key, GradOrZeros(param), refGrads[key]);
            }
        // The replicas' gradients hold this rank's tokens: their sum over the ranks is the whole batch's.
        foreach (var (name, param) in ep.NamedParameters().Where(np => !np.Name.StartsWith("experts.")))
        {
            var grad = param.Grad!.Contiguous();
            g.AllReduce(grad);
            Compare(failures, name + " (summed over ranks)", grad.ToArray(), refGrads[name]);
        }
        if (!ep.AccumulatedLoad.SequenceEqual(refLoad))
            failures.Add($"global load [{string.Join(", ", ep.AccumulatedLoad)}] != one process's " +
                $"[{string.Join(", ", refLoad)}]");
        if (ep.Communication.AllToAllBytes <= 0 && p > 1) failures.Add("no all-to-all bytes counted");
        Console.WriteLine($"rank {me} of {p}: expert-parallel bytes sent per layer and step: " +
            $"all-to-all {ep.Communication.AllToAllBytes}, loads {ep.Communication.ControlBytes}");

        // The bias step from the global load: every rank moves the same way as the one-process layer would.
        var before = full.Gate.ScoreCorrectionBias!.ToArray();
        ep.UpdateBias(0.01f);
        double mean = refLoad.Average();
        var expected = before.Select((b, i) => b + 0.01f * Math.Sign(mean - refLoad[i])).ToArray();
        Compare(failures, "bias after the update", ep.Gate.ScoreCorrectionBias!.ToArray(), expected);

        // Refused before any exchange: a collective here would leave the other ranks waiting.
        if (p == 1) return failures;
        try
        {
            var undivided = p == 3 ? Config(4) : Config(3, groups: 1);
            using var refused = new ExpertParallelMoeLayer(undivided, g, new Generator(1));
            failures.Add("an expert count the group does not divide was accepted");
        }
        catch (ModelConfigException e) when (e.Message.Contains("does not split over"))
        {
        }
        return failures;
    }

    // An expert that no token chose has no gradient: zero, in the reference as in the expert-parallel layer.
    private static float[] GradOrZeros(Tensor param) => param.Grad?.ToArray() ?? new float[param.Numel];

    private static void Compare(List<string> failures, string what, float[] got, float[] expected)
    {
        if (got.Length != expected.Length)
        {
            failures.Add($"{what}: {got.Length} values, expected {expected.Length}");
            return;
        }
        double worst = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double err = Math.Abs(got[i] - expected[i]) / Math.Max(1.0, Math.Abs(expected[i]));
            if (double.IsNaN(got[i]) || double.IsNaN(err)) err = double.PositiveInfinity;
            worst = Math.Max(worst, err);
        }
        if (worst > 1e-5) failures.Add($"{what}: max relative error {worst:g3} > 1e-5");
    }
}
