// Source: DeepSeek-R1 (arXiv:2501.12948) §2.3 pipeline stages; TRL GRPOConfig/SFTConfig naming.
using System.Text.Json.Nodes;

namespace NativeReasoner.RL;

/// <summary>
/// Settings of the multi-stage pipelines (<c>r1</c>, <c>distill</c>): every GRPO setting
/// (<see cref="GrpoSettings"/>, same names) plus the SFT and rejection-sampling stages. One flat namespace,
/// so a JSON config and the command line set any of them; unknown names and bad values name the setting.
/// </summary>
public sealed record PipelineSettings
{
    public GrpoSettings Grpo { get; init; } = new();
    /// <summary>r1: worked solutions (ThinkTraces) in the cold-start SFT set.</summary>
    public int ColdStartExamples { get; init; } = 64;
    public int SftEpochs { get; init; } = 2;
    public int SftBatchSize { get; init; } = 8;
    public float SftLearningRate { get; init; } = 1e-4f;
    /// <summary>Training problems sampled by rejection sampling (r1 stage 3) or answered by the teacher (distill).</summary>
    public int RejectionProblems { get; init; } = 32;
    /// <summary>Completions sampled per problem.</summary>
    public int RejectionSamples { get; init; } = 4;
    /// <summary>Verified-correct completions kept per problem at most.</summary>
    public int KeepPerProblem { get; init; } = 1;
    /// <summary>r1: GRPO steps of the second RL stage (0 = the same as <c>steps</c>).</summary>
    public int Steps2 { get; init; }

    public int SecondRlSteps => Steps2 > 0 ? Steps2 : Grpo.Steps;

    private delegate PipelineSettings Setter(PipelineSettings s, string value);

    private static readonly (string Name, string Help, Setter Set)[] Table =
    [
        ("cold_start_examples", "r1: worked solutions in the cold-start SFT set", (s, v) => s with { ColdStartExamples = Positive(GrpoSettings.Int(v)) }),
        ("sft_epochs", "passes over each SFT set", (s, v) => s with { SftEpochs = Positive(GrpoSettings.Int(v)) }),
        ("sft_batch_size", "SFT examples per optimizer step", (s, v) => s with { SftBatchSize = Positive(GrpoSettings.Int(v)) }),
        ("sft_learning_rate", "SFT AdamW peak learning rate", (s, v) => s with { SftLearningRate = GrpoSettings.Float(v) }),
        ("rejection_problems", "training problems for rejection sampling / teacher traces", (s, v) => s with { RejectionProblems = Positive(GrpoSettings.Int(v)) }),
        ("rejection_samples", "completions sampled per problem", (s, v) => s with { RejectionSamples = Positive(GrpoSettings.Int(v)) }),
        ("keep_per_problem", "verified-correct completions kept per problem at most", (s, v) => s with { KeepPerProblem = Positive(GrpoSettings.Int(v)) }),
        ("steps_2", "r1: GRPO steps of the second RL stage (0 = steps)", (s, v) => s with { Steps2 = GrpoSettings.Int(v) }),
    ];

    /// <summary>Every setting name with its help: the GRPO ones, then the pipeline's own.</summary>
    public static IEnumerable<(string Name, string Help)> Names => GrpoSettings.Names.Concat(Table.Select(t => (t.Name, t.Help)));

    public PipelineSettings With(string name, string value)
    {
        var key = name.Replace('-', '_');
        var entry = Table.FirstOrDefault(t => t.Name == key);
        if (entry.Set == null)
        {
            if (!GrpoSettings.Names.Any(n => n.Name == key))
                throw new ArgumentException($"unknown setting '{name}'; known: {string.Join(", ", Names.Select(n => n.Name))}");
            return this with { Grpo = Grpo.With(key, value) };
        }
        try { return entry.Set(this, value.Trim()); }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new ArgumentException($"setting {entry.Name} = '{value}': {e.Message}", e);
        }
    }

    public PipelineSettings WithJson(string json, string source) => ConfigJson.Apply(this, json, source, (s, k, v) => s.With(k, v));

    /// <summary>The effective settings, for summary.json.</summary>
    public JsonObject ToJson()
    {
        var o = Grpo.ToJson();
        o["cold_start_examples"] = ColdStartExamples;
        o["sft_epochs"] = SftEpochs;
        o["sft_batch_size"] = SftBatchSize;
        o["sft_learning_rate"] = SftLearningRate;
        o["rejection_problems"] = RejectionProblems;
        o["rejection_samples"] = RejectionSamples;
        o["keep_per_problem"] = KeepPerProblem;
        o["steps_2"] = SecondRlSteps;
        return o;
    }

    private static int Positive(int v) => v >= 1 ? v : throw new ArgumentException($"must be ≥ 1, got {v}");
}
