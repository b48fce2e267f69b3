// Source: DeepSeek-R1 (arXiv:2501.12948) §2.3.3 rejection sampling (keep verified-correct, well-formed outputs).
using System.Text;
using System.Text.Json;
using NativeReasoner.Distributed;
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>What a rejection-sampling run kept.</summary>
public sealed record RejectionSamplingResult(IReadOnlyList<SftExample> Kept, int Sampled, int ProblemsSolved);

/// <summary>
/// Rejection sampling (R1's stage 3 data): sample K completions per problem, keep those the task verifies
/// as correct (and, when required, well-formed), at most <c>keepPerProblem</c> per problem, and write
/// them as SFT JSONL (see <see cref="SftData"/>). Problem i samples from its own generator (seeded from
/// <c>rng</c>'s first draw and i), so a problem's samples do not depend on which others run beside it: given a
/// process group, problem i runs on rank i mod size, the kept examples are gathered in problem order on every rank
/// (the SFT that follows trains on all of them), and rank 0 alone writes the file.
/// </summary>
public static class RejectionSampling
{
    public static RejectionSamplingResult Run(IPolicy policy, ITokenizer tokenizer, PromptTemplate template, VerifiableTask task,
        IReadOnlyList<Problem> problems, int samplesPerProblem, GenerationOptions options, Generator rng,
        string? outPath = null, int keepPerProblem = 1, bool requireFormat = true, IProcessGroup? group = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samplesPerProblem, 1);
        int rank = group?.Rank ?? 0, size = group?.Size ?? 1;
        var acc = new AccuracyReward(task);
        // Kept examples by problem index (this rank's problems).
        var keptBy = new SortedDictionary<int, List<SftExample>>();
        ulong baseSeed = rng.NextUInt64();
        for (int index = rank; index < problems.Count; index += size)
        {
            var p = problems[index];
            var kept = keptBy[index] = [];
            var prompt = tokenizer.EncodePrompt(template.Format(p.Prompt));
            var problemRng = new Generator(baseSeed + (ulong)index * 0x9E3779B97F4A7C15UL);
            var samples = policy.Generate(Enumerable.Repeat(prompt, samplesPerProblem).ToArray(), options, problemRng);
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
        }
        if (size > 1)
        {
            // Every rank's kept examples, as JSON, to every rank; merged in problem order (one process's order).
            var mine = JsonSerializer.SerializeToUtf8Bytes(keptBy.Select(kv => new Share(kv.Key, kv.Value)).ToArray());
            foreach (var bytes in group!.AllGatherBytes(mine))
                foreach (var share in JsonSerializer.Deserialize<Share[]>(bytes)!)
                    keptBy[share.Index] = share.Kept;
        }
        var all = keptBy.Values.SelectMany(k => k).ToArray();
        int solved = keptBy.Values.Count(k => k.Count > 0);
        if (outPath != null && rank == 0) SftData.WriteJsonl(outPath, all);
        return new RejectionSamplingResult(all, problems.Count * samplesPerProblem, solved);
    }

    /// <summary>One problem's kept examples as a rank sends them.</summary>
    private sealed record Share(int Index, List<SftExample> Kept);
}
