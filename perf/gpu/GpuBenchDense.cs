using NativeReasoner.Model;
using NativeReasoner.Model.Dense;
using NativeReasoner.Optim;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// One training step of a dense GQA model shaped like Qwen2.5-0.5B (its config.json: 24 layers, hidden 896, 14 query
/// heads over 2 K/V heads of 64, SwiGLU width 4864, q/k/v biases, tied embeddings, vocabulary 151936, rope θ 10⁶) on
/// the device, random weights and tokens: forward, cross-entropy, backward, AdamW. Tokens/s and MFU by the 6·N rule
/// as <see cref="GpuBenchTraining"/> counts it (N: every parameter but the embedding lookup; with tied embeddings the
/// table is the head, a matmul, so it counts). --bf16 runs the step inside <see cref="Autocast.Bf16"/>.
/// </summary>
internal static class GpuBenchDense
{
    /// <summary>Qwen2.5-0.5B's shapes (about 494M parameters).</summary>
    public static DenseConfig Qwen25HalfB { get; } = new DenseConfig
    {
        ModelType = "qwen2", VocabSize = 151936, HiddenSize = 896, IntermediateSize = 4864, NumHiddenLayers = 24,
        NumAttentionHeads = 14, NumKeyValueHeads = 2, HeadDim = 64, RmsNormEps = 1e-6,
        Rope = new RopeParameters { Theta = 1000000.0 }, MaxPositionEmbeddings = 32768, TieWordEmbeddings = true,
        QkvBias = true,
    }.Validate();

    /// <summary>The same architecture, tiny (the smoke run).</summary>
    public static DenseConfig ConfigSmoke { get; } = new DenseConfig
    {
        ModelType = "qwen2", VocabSize = 96, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2,
        NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 8, MaxPositionEmbeddings = 64, TieWordEmbeddings = true,
        QkvBias = true,
    }.Validate();

    /// <summary>
    /// All parameters, and those a token's forward multiplies with (all but an untied embedding table).
    /// </summary>
    public static (long Total, long Active) CountParameters(DenseForCausalLM model)
    {
        long total = model.ParameterCount;
        long lookup = model.Config.TieWordEmbeddings ? 0 : model.Model.EmbedTokens.Weight.Numel;
        return (total, total - lookup);
    }

    public static GpuBench Bench { get; } = new("train_dense",
        "training step (fwd, CE, bwd, AdamW) of a Qwen2.5-0.5B-shaped dense GQA model, batch 4 × 1024 tokens: " +
        "tokens/s, MFU",
        ctx =>
        {
            var c = ctx.Sizes.DenseConfig;
            int batch = ctx.Sizes.DenseBatch, seq = ctx.Sizes.DenseSeq;
            ctx.Plan(new GpuBenchOp("train_step_dense", [batch, seq], ctx.ModelDType));
            using var model = new DenseForCausalLM(c, new Generator(1), ctx.Device);
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
                return l;
            }

            var peaks = GpuBenchPeaks.For(ctx.CardName);
            double tokens = (double)batch * seq;
            (string, object?)[] Mfu(double seconds)
            {
                double achieved = 6.0 * active * tokens / seconds / 1e12;
                return
                [
                    ("model_tflops", achieved),
                    ("mfu", peaks is { } p ? achieved / p.Bf16 : "unknown"),
                    ("mfu_fp32", peaks is { } q ? achieved / q.Fp32 : "unknown"),
                    ("first_loss", (double)firstLoss),
                ];
            }

            ctx.Measure(new GpuBenchOp("train_step_dense", [batch, seq], ctx.ModelDType)
            {
                Tokens = tokens,
                Derived = Mfu,
                Extra = [("params_total", total), ("params_active", active), ("layers", c.NumHiddenLayers),
                         ("hidden", c.HiddenSize), ("heads", c.NumAttentionHeads), ("kv_heads", c.NumKeyValueHeads),
                         ("vocab", c.VocabSize)],
            }, () => Step(false), setup: () => firstLoss = Step(true));
        });
}
