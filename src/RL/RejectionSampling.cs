// Source: DeepSeek-R1 (arXiv:2501.12948) §2.3.3 rejection sampling (keep verified-correct, well-formed outputs).
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>What a rejection-sampling run kept.</summary>
public sealed record RejectionSamplingResult(IReadOnlyList<SftExample> Kept, int Sampled, int ProblemsSolved);

/// <summary>
/// Rejection sampling (R1's stage 3 data): sample K completions per problem, keep those the task verifies
/// as correct (and, when required, well-formed), at most <c>keepPerProblem</c> per problem, and write
/// them as SFT JSONL (see <see cref="SftData"/>).
/// </summary>
public static class RejectionSampling
{
    public static RejectionSamplingResult Run(IPolicy policy, ITokenizer tokenizer, PromptTemplate template, VerifiableTask task,
        IReadOnlyList<Problem> problems, int samplesPerProblem, GenerationOptions options, Generator rng,
        string? outPath = null, int keepPerProblem = 1, bool requireFormat = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samplesPerProblem, 1);
        var acc = new AccuracyReward(task);
        var kept = new List<SftExample>();
        int solved = 0;
        foreach (var p in problems)
        {
            var prompt = tokenizer.EncodePrompt(template.Format(p.Prompt));
            var samples = policy.Generate(Enumerable.Repeat(prompt, samplesPerProblem).ToArray(), options, rng);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            int keptHere = 0;
            foreach (var s in samples)
            {
                if (keptHere >= keepPerProblem) break;
                // Truncated completions never count: they did not finish their answer.
                if (s.Truncated) continue;
                var toks = s.Tokens[^1] == tokenizer.EosId ? s.Tokens[..^1] : s.Tokens;
                var text = tokenizer.Decode(toks.Select(t => (int)t));
                if (acc.Score(new RewardInput(p, text, s.Tokens.Length, false)) != 1f) continue;
                if (requireFormat && !FormatReward.IsWellFormed(text, template.ThinkPrefilled)) continue;
                if (!seen.Add(text)) continue;
                kept.Add(new SftExample(p.Prompt, text, p.Answer, p.Difficulty));
                keptHere++;
            }
            if (keptHere > 0) solved++;
        }
        if (outPath != null) SftData.WriteJsonl(outPath, kept);
        return new RejectionSamplingResult(kept, problems.Count * samplesPerProblem, solved);
    }
}
