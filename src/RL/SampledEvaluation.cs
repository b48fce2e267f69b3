using NativeReasoner.Model;
using System.Text.Json.Nodes;

namespace NativeReasoner.RL;

/// <summary>
/// Sampled scores of a set of problems (one difficulty level, or all): pass@k and maj@k for k = 1…K, index k − 1.
/// pass@1 is the accuracy averaged over the K samples of each problem (the R1 paper's headline number).
/// </summary>
public sealed record SampledScores(
    int Problems, double[] PassAtK, double[] MajAtK, double FormatRate, double MeanLength)
{
    public double Pass1 => PassAtK[0];

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["n"] = Problems, ["pass@1"] = Pass1 };
        for (int k = 1; k <= PassAtK.Length; k++) o[$"pass@{k}"] = PassAtK[k - 1];
        for (int k = 1; k <= MajAtK.Length; k++) o[$"maj@{k}"] = MajAtK[k - 1];
        o["format_rate"] = FormatRate;
        o["mean_completion_length"] = MeanLength;
        return o;
    }
}

/// <summary>Sampled evaluation of a held-out set: overall and by difficulty level.</summary>
public sealed record SampledEvalReport(int Samples, float Temperature, float TopP, SampledScores Overall,
    IReadOnlyDictionary<int, SampledScores> ByDifficulty)
{
    /// <summary>Each problem's K completions, in problem order.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Completions { get; init; } = [];

    public JsonObject ToJson()
    {
        var by = new JsonObject();
        foreach (var (level, s) in ByDifficulty.OrderBy(kv => kv.Key)) by[level.ToString()] = s.ToJson();
        var o = new JsonObject { ["samples"] = Samples, ["temperature"] = Temperature, ["top_p"] = TopP };
        foreach (var (key, value) in Overall.ToJson()) o[key] = value?.DeepClone();
        o["by_difficulty"] = by;
        return o;
    }
}

/// <summary>
/// R1-style evaluation (arXiv 2501.12948, §3.1): K sampled completions per held-out problem (the paper uses
/// temperature 0.6, top-p 0.95), scored by the task's verifier; reports pass@1 averaged over the samples, the
/// unbiased pass@k for k = 1…K (<see cref="PassAtK.Estimate"/>) and maj@k, the majority vote over the parsed
/// answers of the first k samples (<see cref="PassAtK.MajorityIndex"/>).
/// </summary>
public static class SampledEvaluation
{
    /// <summary>Sequences generated per call, so K × problems never becomes one huge batch.</summary>
    private const int MaxBatch = 256;

    /// <summary>One problem's K samples: verdict, parsed answer (null: none), well-formed, tokens.</summary>
    private sealed record ProblemResult(
        int Difficulty, bool[] Correct, string?[] Answers, double[] Format, double[] Length)
    {
        public ProblemResult(int difficulty, int samples)
            : this(difficulty, new bool[samples], new string?[samples], new double[samples], new double[samples]) { }
    }

    public static SampledEvalReport Run(IPolicy policy, ITokenizer tokenizer, PromptTemplate template,
        VerifiableTask task, IReadOnlyList<Problem> problems, GenerationOptions options, int samples, ulong seed = 0)
    {
        if (samples < 1) throw new ArgumentException($"samples per problem must be ≥ 1, got {samples}");
        if (problems.Count == 0) throw new ArgumentException("sampled evaluation needs at least one problem, got none");
        if (samples > 1 && !(options.Temperature > 0))
            throw new ArgumentException($"{samples} samples per problem need a temperature > 0 " +
                                        $"(0 would repeat the greedy answer), got {options.Temperature}");
        var rng = new Generator(seed);
        var accuracy = new AccuracyReward(task);
        var results = new List<ProblemResult>(problems.Count);
        var completions = new List<IReadOnlyList<string>>(problems.Count);
        int perCall = Math.Max(1, MaxBatch / samples);
        for (int start = 0; start < problems.Count; start += perCall)
        {
            var chunk = problems.Skip(start).Take(perCall).ToArray();
            // prompts: [chunk × K], each problem's K copies next to each other.
            var prompts = chunk
                .Select(p => tokenizer.EncodePrompt(template.Format(p.Prompt)))
                .SelectMany(ids => Enumerable.Repeat(ids, samples))
                .ToArray();
            var generated = policy.Generate(prompts, options, rng);
            for (int j = 0; j < chunk.Length; j++)
            {
                var r = new ProblemResult(chunk[j].Difficulty, samples);
                var texts = new string[samples];
                for (int s = 0; s < samples; s++)
                {
                    var sample = generated[j * samples + s];
                    var toks = sample.Tokens;
                    int n = toks.Length > 0 && toks[^1] == tokenizer.EosId ? toks.Length - 1 : toks.Length;
                    var text = tokenizer.Decode(toks.Take(n).Select(t => (int)t));
                    texts[s] = text;
                    r.Correct[s] = accuracy.Score(new RewardInput(chunk[j], text, toks.Length, sample.Truncated)) == 1f;
                    r.Answers[s] = AnswerParsing.LastBoxed(text);
                    r.Format[s] = FormatReward.IsWellFormed(text, template.ThinkPrefilled) ? 1 : 0;
                    r.Length[s] = toks.Length;
                }
                results.Add(r);
                completions.Add(texts);
            }
        }
        var by = results.GroupBy(r => r.Difficulty).ToDictionary(g => g.Key, g => Score(g.ToArray(), samples));
        return new SampledEvalReport(samples, options.Temperature, options.TopP, Score(results, samples), by)
        {
            Completions = completions,
        };
    }

    /// <summary>Means over the problems of each problem's estimates.</summary>
    private static SampledScores Score(IReadOnlyList<ProblemResult> results, int samples)
    {
        var pass = new double[samples];
        var maj = new double[samples];
        foreach (var r in results)
        {
            int c = r.Correct.Count(x => x);
            for (int k = 1; k <= samples; k++)
            {
                pass[k - 1] += PassAtK.Estimate(samples, c, k) / results.Count;
                int winner = PassAtK.MajorityIndex(r.Answers, k);
                if (winner >= 0 && r.Correct[winner]) maj[k - 1] += 1.0 / results.Count;
            }
        }
        return new SampledScores(results.Count, pass, maj,
            FormatRate: results.Average(r => r.Format.Average()), MeanLength: results.Average(r => r.Length.Average()));
    }
}
