using NativeReasoner.Model;
using NativeReasoner.RL.Chat;
using System.Text.Json.Nodes;

namespace NativeReasoner.RL;

/// <summary>One thinking budget's evaluation: greedy always, sampled when K &gt; 1.</summary>
public sealed record BudgetedEval(int Budget, EvalReport Greedy, SampledEvalReport? Sampled, double MeanThinkingTokens)
{
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["thinking_budget"] = Budget, ["mean_thinking_tokens"] = MeanThinkingTokens, ["greedy"] = Greedy.ToJson(),
        };
        if (Sampled != null) o["sampled"] = Sampled.ToJson();
        return o;
    }
}

/// <summary>
/// Test-time scaling by budget forcing (s1, arXiv 2501.19393): the same held-out problems evaluated once per
/// thinking budget, each capped with a forced <c>&lt;/think&gt;</c> and optionally extended with "Wait".
/// </summary>
public static class ThinkingBudgetSweep
{
    /// <summary>
    /// The budget in the tokenizer's ids: <c>&lt;/think&gt;</c>, and <c>&lt;think&gt;</c> as the opening to wait
    /// for unless the template already opened thinking.
    /// </summary>
    public static ThinkingBudget Create(ITokenizer tokenizer, PromptTemplate template, int? maxThinkingTokens,
        string extendWith = "Wait", int maxExtensions = 0)
    {
        long[] Ids(string text, string what)
        {
            var ids = tokenizer.Encode(text).Select(i => (long)i).ToArray();
            if (ids.Length == 0) throw new ArgumentException($"thinking budget: {what} \"{text}\" encodes to no tokens");
            return ids;
        }
        return new ThinkingBudget
        {
            MaxThinkingTokens = maxThinkingTokens,
            ThinkEndIds = Ids(CharTokenizer.ThinkEnd, "the end of thinking"),
            ThinkStartIds = template.ThinkPrefilled ? [] : Ids(CharTokenizer.ThinkStart, "the start of thinking"),
            ExtensionIds = maxExtensions > 0 ? Ids(extendWith, "--extend-with") : [],
            MaxExtensions = maxExtensions,
        };
    }

    /// <summary>
    /// Evaluates every budget in <paramref name="budgets"/> (greedy; sampled too when <paramref name="samples"/>
    /// &gt; 1, at <paramref name="sampledOptions"/>' temperature and top-p).
    /// </summary>
    public static IReadOnlyList<BudgetedEval> Run(IPolicy policy, ITokenizer tokenizer, PromptTemplate template,
        VerifiableTask task, IReadOnlyList<Problem> problems, GenerationOptions greedyOptions,
        IReadOnlyList<int> budgets, string extendWith, int maxExtensions,
        int samples = 1, GenerationOptions? sampledOptions = null, ulong seed = 0)
    {
        if (budgets.Count == 0) throw new ArgumentException("thinking budgets: none given");
        foreach (var b in budgets)
            if (b < 0) throw new ArgumentException($"thinking budget must be ≥ 0 tokens, got {b}");
        if (samples > 1 && sampledOptions == null) throw new ArgumentException($"{samples} samples need sampled options");
        var results = new List<BudgetedEval>(budgets.Count);
        foreach (var b in budgets)
        {
            var budget = Create(tokenizer, template, b, extendWith, maxExtensions);
            var greedy = Evaluation.Run(policy, tokenizer, template, task, problems,
                greedyOptions with { ThinkingBudget = budget });
            var sampled = samples > 1
                ? SampledEvaluation.Run(policy, tokenizer, template, task, problems,
                    sampledOptions! with { ThinkingBudget = budget }, samples, seed)
                : null;
            double thinking = greedy.Completions.Average(c => ThinkingTokens(tokenizer, template, c));
            results.Add(new BudgetedEval(b, greedy, sampled, thinking));
        }
        return results;
    }

    /// <summary>Tokens of a completion's reasoning (between the think tags), 0 when it has none.</summary>
    public static int ThinkingTokens(ITokenizer tokenizer, PromptTemplate template, string completion)
    {
        var split = ThinkingSplit.Split(completion, template.ThinkPrefilled);
        return string.IsNullOrEmpty(split.Reasoning) ? 0 : tokenizer.Encode(split.Reasoning).Length;
    }
}
