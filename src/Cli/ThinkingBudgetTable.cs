using System.Text.Json.Nodes;
using NativeReasoner.RL;

namespace NativeReasoner.Cli;

/// <summary><c>nr eval --thinking-budget</c>: parsing the budgets, and accuracy per budget per level as a table or JSON.</summary>
internal static class ThinkingBudgetTable
{
    /// <summary>"0,4,8" → [0, 4, 8]; null or blank → null (no sweep).</summary>
    public static IReadOnlyList<int>? ParseBudgets(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var budgets = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, out int b) || b < 0)
                throw new UsageException(
                    $"--thinking-budget expects comma-separated token counts ≥ 0 (e.g. 0,4,8,16), got \"{part}\"");
            budgets.Add(b);
        }
        return budgets;
    }

    public static JsonObject ToJson(IReadOnlyList<BudgetedEval> sweep, string extendWith, int maxExtensions) => new()
    {
        ["extend_with"] = maxExtensions > 0 ? extendWith : null,
        ["max_extensions"] = maxExtensions,
        ["budgets"] = new JsonArray(sweep.Select(s => (JsonNode)s.ToJson()).ToArray()),
    };

    /// <summary>Accuracy against the budget: greedy (blue), then sampled pass@1 (orange) when sampled.</summary>
    public static byte[] Plot(IReadOnlyList<BudgetedEval> sweep)
    {
        var budgets = sweep.Select(s => (double)s.Budget).ToArray();
        var series = new List<(string Legend, (double[] X, double[] Y) Points)>
        {
            ("greedy accuracy", (budgets, sweep.Select(s => s.Greedy.Accuracy).ToArray())),
        };
        if (sweep.All(s => s.Sampled != null))
            series.Add(("sampled pass@1", (budgets, sweep.Select(s => s.Sampled!.Overall.Pass1).ToArray())));
        return Plots.LineChart("Accuracy against the thinking budget", "thinking budget (tokens)",
            "held-out accuracy (fraction)", series);
    }

    /// <summary>Greedy accuracy by level per budget (then sampled pass@1 when present), unbudgeted last.</summary>
    public static void Print(IReadOnlyList<BudgetedEval> sweep, EvalReport unbudgeted, SampledEvalReport? sampled)
    {
        var levels = unbudgeted.ByDifficulty.Keys.Order().ToArray();
        string Header() => "budget " + string.Concat(levels.Select(l => $"{"L" + l,8}")) + $"{"all",8}  think_tok";
        Console.WriteLine("\ntest-time scaling: greedy accuracy by thinking budget");
        Console.WriteLine(Header());
        foreach (var s in sweep)
            Console.WriteLine($"{s.Budget,6} " + string.Concat(levels.Select(l => Cell(s.Greedy, l)))
                              + $"{s.Greedy.Accuracy,8:P1} {s.MeanThinkingTokens,10:F1}");
        Console.WriteLine($"{"none",6} " + string.Concat(levels.Select(l => Cell(unbudgeted, l)))
                          + $"{unbudgeted.Accuracy,8:P1}");
        if (sampled == null) return;
        Console.WriteLine($"\ntest-time scaling: sampled pass@1 ({sampled.Samples} samples) by thinking budget");
        Console.WriteLine(Header());
        foreach (var s in sweep)
            Console.WriteLine($"{s.Budget,6} " + string.Concat(levels.Select(l => SampledCell(s.Sampled!, l)))
                              + $"{s.Sampled!.Overall.Pass1,8:P1}");
        Console.WriteLine($"{"none",6} " + string.Concat(levels.Select(l => SampledCell(sampled, l)))
                          + $"{sampled.Overall.Pass1,8:P1}");
    }

    private static string Cell(EvalReport r, int level) =>
        r.ByDifficulty.TryGetValue(level, out var v) ? $"{v.Accuracy,8:P1}" : $"{"-",8}";

    private static string SampledCell(SampledEvalReport r, int level) =>
        r.ByDifficulty.TryGetValue(level, out var v) ? $"{v.Pass1,8:P1}" : $"{"-",8}";
}
