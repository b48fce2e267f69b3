using NativeReasoner.Model;
using NativeReasoner.Optim;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// One training step of a ~100M-parameter DeepSeek-V3-architecture model on the device: forward, cross-entropy,
/// backward, AdamW, aux-loss-free router-bias update — the loop of <c>nr train</c>, on random tokens. Reports tokens/s
/// and MFU = 6·N_active·tokens/s ÷ the card's peak (<see cref="GpuBenchPeaks"/>; "unknown" for other cards), where
/// N_active counts the parameters a token passes through: everything except the embedding table (a lookup, no
/// flops) and the routed experts a token does not use. The 6·N rule leaves out attention's T² term (about 4% here at
/// T = 1024). MFU is given against both the bf16 tensor-core peak ("mfu", the usual definition) and the fp32 peak
/// ("mfu_fp32"). With --bf16 the step runs inside <see cref="Autocast.Bf16"/> (dtype "bf16-autocast"): the products
/// autocast covers run in bf16 with fp32 accumulation, master weights and optimizer state stay fp32.
/// </summary>
internal static class GpuBenchTraining
{
    /// <summary>
    /// ~110M parameters, ~36M active: 8 layers (1 dense, 7 MoE), hidden 512, 8 heads, MLA with q rank 256 / kv rank
    /// 128, 32 routed experts of width 192 (8 groups, 4 kept, top-4) + 1 shared, vocabulary 32768.
    /// </summary>
    public static DeepseekV3Config Config100M { get; } = new DeepseekV3Config
    {
        VocabSize = 32768, HiddenSize = 512, IntermediateSize = 1536, MoeIntermediateSize = 192,
        NumHiddenLayers = 8, FirstKDenseReplace = 1, NumAttentionHeads = 8, NumKeyValueHeads = 8,
        NRoutedExperts = 32, NSharedExperts = 1, NumExpertsPerTok = 4, NGroup = 8, TopkGroup = 4,
        RoutedScalingFactor = 2.5, QLoraRank = 256, KvLoraRank = 128, QkNopeHeadDim = 64, QkRopeHeadDim = 32,
        VHeadDim = 64, MaxPositionEmbeddings = 4096,
    }.Validate();

    /// <summary>The same architecture, tiny (the smoke run).</summary>
    public static DeepseekV3Config ConfigSmoke { get; } = new DeepseekV3Config
    {
        VocabSize = 128, HiddenSize = 32, IntermediateSize = 64, MoeIntermediateSize = 16,
        NumHiddenLayers = 2, FirstKDenseReplace = 1, NumAttentionHeads = 2, NumKeyValueHeads = 2,
        NRoutedExperts = 16, NSharedExperts = 1, NumExpertsPerTok = 4, NGroup = 8, TopkGroup = 4,
        RoutedScalingFactor = 2.5, QLoraRank = 16, KvLoraRank = 16, QkNopeHeadDim = 8, QkRopeHeadDim = 4,
        VHeadDim = 8, MaxPositionEmbeddings = 64,
    }.Validate();

    /// <summary>Parameters of the model, and those one token's forward multiplies with (see the class comment).</summary>
    public static (long Total, long Active) CountParameters(DeepseekV3ForCausalLM model)
    {
        var c = model.Config;
        long total = model.ParameterCount;
        long inactive = model.Model.EmbedTokens.Weight.Numel;
        if (c.TieWordEmbeddings) inactive = 0; // the table is also the head: a matmul
        long perExpert = 3L * c.HiddenSize * c.MoeIntermediateSize;
        inactive += model.MoeLayers.Count() * (long)(c.NRoutedExperts - c.NumExpertsPerTok) * perExpert;
        return (total, total - inactive);
    }

    public static GpuBench Bench { get; } = new("train",
        "training step (fwd, CE, bwd, AdamW) of a ~100M-parameter DeepSeek-V3 config, batch 8 × 1024 tokens: tokens/s, MFU", ctx =>
        {
            var c = ctx.Sizes.TrainConfig;
            int batch = ctx.Sizes.TrainBatch, seq = ctx.Sizes.TrainSeq;
            ctx.Plan(new GpuBenchOp("train_step", [batch, seq], ctx.ModelDType));
            using var model = new DeepseekV3ForCausalLM(c, new Generator(1), ctx.Device);
            using var opt = new AdamW(model.Parameters(), lr: 1e-4f);
            var (total, active) = CountParameters(model);
            var (input, target) = ModelBenchmark.RandomNextTokenBatch(c.VocabSize, batch, seq, new Generator(2));
            using var inputT = Tensor.FromArray(input, [batch, seq], ctx.Device);
            using var targetT = Tensor.FromArray(target, [batch * seq], ctx.Device);
            float firstLoss = float.NaN;

            float Step(bool readLoss)
            {
                float l = float.NaN;
                using (ctx.ModelPrecision())
                using (var scope = new TensorScope())
                {
                    var logits = model.Forward(inputT);
                    var loss = Functional.CrossEntropy(logits.View(batch * seq, c.VocabSize), targetT);
                    loss.Backward();
                    if (readLoss) l = loss.Item();
                }
                opt.Step();
                opt.ZeroGrad();
                model.UpdateRouterBiases(1e-3f);
                return l;
            }

            var peaks = GpuBenchPeaks.For(ctx.CardName);
            double tokens = (double)batch * seq;
            (string, object?)[] Mfu(double seconds)
            {
                double achieved = 6.0 * active * tokens / seconds / 1e12; // TFLOP/s by the 6·N rule
                return
                [
                    ("model_tflops", achieved),
                    ("mfu", peaks is { } p ? achieved / p.Bf16 : "unknown"),
                    ("mfu_fp32", peaks is { } q ? achieved / q.Fp32 : "unknown"),
                    ("first_loss", (double)firstLoss),
                ];
            }

            ctx.Measure(new GpuBenchOp("train_step", [batch, seq], ctx.ModelDType)
            {
                Tokens = tokens,
                Derived = Mfu,
                Extra = [("params_total", total), ("params_active", active), ("layers", c.NumHiddenLayers), ("hidden", c.HiddenSize),
                         ("experts", c.NRoutedExperts), ("top_k", c.NumExpertsPerTok), ("vocab", c.VocabSize)],
            }, () => Step(false), setup: () => firstLoss = Step(true));
        });
}
