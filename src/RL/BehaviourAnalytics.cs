// Source: the behaviours DeepSeek-R1 (arXiv:2501.12948, §2.2.4) reports emerging under RL — longer thinking,
// re-checking and self-correction ("aha moment") — measured on the completions of a run.
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace NativeReasoner.RL;

/// <summary>What one completion's &lt;think&gt; trace does.</summary>
/// <param name="Thinks">It has a trace (a &lt;think&gt; block, closed or not, or a prefilled one).</param>
/// <param name="ThinkingTokens">Tokens inside the trace (0 without one).</param>
/// <param name="Verifications">Steps of the trace that check a result: a checking word, or a claim restated with
/// the value it already had.</param>
/// <param name="SelfCorrections">Steps that revise a result: a revising word, or a claim restated with a different
/// value.</param>
public sealed record TraceBehaviour(bool Thinks, int ThinkingTokens, int Verifications, int SelfCorrections);

/// <summary>Behaviour of a set of completions (one difficulty level, or all).</summary>
/// <param name="ThinkLengthCorrect">Mean thinking tokens of the correct completions that think (NaN: none).</param>
/// <param name="VerificationRate">Share of thinking completions with at least one verification step (NaN: none
/// thinks).</param>
public sealed record BehaviourStats(int Count, int Thinking, int CorrectThinking, int IncorrectThinking,
    double ThinkLengthCorrect, double ThinkLengthIncorrect, double VerificationRate, double SelfCorrectionRate,
    double VerificationsPerTrace, double SelfCorrectionsPerTrace)
{
    public JsonObject ToJson() => new()
    {
        ["n"] = Count, ["thinking"] = Thinking, ["correct_thinking"] = CorrectThinking,
        ["incorrect_thinking"] = IncorrectThinking,
        ["think_length_correct"] = N(ThinkLengthCorrect), ["think_length_incorrect"] = N(ThinkLengthIncorrect),
        ["verification_rate"] = N(VerificationRate), ["self_correction_rate"] = N(SelfCorrectionRate),
        ["verifications_per_trace"] = N(VerificationsPerTrace),
        ["self_corrections_per_trace"] = N(SelfCorrectionsPerTrace),
    };

    // JSON has no NaN: a measure with nothing to average over is null.
    private static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
}

/// <summary>
/// Behaviour analytics of reasoning traces: how long the model thinks when it ends up right versus wrong, how often
/// its trace verifies a step and how often it corrects itself. A trace is cut into steps (at commas, semicolons,
/// sentence ends and line breaks); a step counts as a verification when it holds a checking word (check, verify,
/// confirm) or restates an expression the trace already evaluated with the same value, and as a self-correction
/// when it holds a revising word (wait, actually, mistake, wrong) or gives an evaluated expression a different
/// value. The structural rule catches the behaviours in traces of pure arithmetic, where a small model writes no
/// words at all (<c>47*6=280, 47*6=282</c> corrects itself).
/// </summary>
public static partial class BehaviourAnalytics
{
    [GeneratedRegex(@"\b(check(s|ed|ing)?|verif(y|ies|ied|ying|ication)|confirm(s|ed|ing)?|double[- ]check)\b",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex VerificationWord();

    [GeneratedRegex(@"\b(wait|actually|oops|mistake|wrong|incorrect|correction|recalculate|redo)\b",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex CorrectionWord();

    // A step ends at a comma, semicolon, line break, ! or ?, or a period followed by a space or the end.
    [GeneratedRegex(@"[,;\n!?]|\.(?:\s|$)")]
    private static partial Regex StepSeparator();

    /// <summary>
    /// The trace of <paramref name="completion"/>: after &lt;think&gt; (from the start when the prompt prefilled
    /// it) up to &lt;/think&gt; or the end; null without one.
    /// </summary>
    public static string? Trace(string completion, bool thinkPrefilled = false)
    {
        int start;
        if (thinkPrefilled) start = 0;
        else
        {
            start = completion.IndexOf(CharTokenizer.ThinkStart, StringComparison.Ordinal);
            if (start < 0) return null;
            start += CharTokenizer.ThinkStart.Length;
        }
        int end = completion.IndexOf(CharTokenizer.ThinkEnd, start, StringComparison.Ordinal);
        return end < 0 ? completion[start..] : completion[start..end];
    }

    /// <summary>The behaviour of one completion; <paramref name="tokenizer"/> counts the thinking tokens.</summary>
    public static TraceBehaviour Analyse(string completion, ITokenizer tokenizer, bool thinkPrefilled = false)
    {
        var trace = Trace(completion, thinkPrefilled);
        if (trace == null) return new TraceBehaviour(false, 0, 0, 0);
        var (verifications, corrections) = CountSteps(trace);
        return new TraceBehaviour(true, tokenizer.Encode(trace).Length, verifications, corrections);
    }

    /// <summary>(verification steps, self-correction steps) of a trace's text.</summary>
    public static (int Verifications, int SelfCorrections) CountSteps(string trace)
    {
        // expression (digits and operators only) → the values the trace has given it so far.
        var claims = new Dictionary<string, HashSet<long>>();
        int verifications = 0, corrections = 0;
        foreach (var step in StepSeparator().Split(trace))
        {
            if (string.IsNullOrWhiteSpace(step)) continue;
            bool verifies = VerificationWord().IsMatch(step), corrects = CorrectionWord().IsMatch(step);
            var terms = step.Split('=').Select(Normalise).ToArray();
            // Each expression term is claimed equal to every plain number after it in the chain.
            var stepClaims = new List<(string Expr, long Value)>();
            for (int i = 0; i < terms.Length; i++)
            {
                if (terms[i].Length == 0 || IsNumber(terms[i], out _)) continue;
                for (int j = i + 1; j < terms.Length; j++)
                    if (IsNumber(terms[j], out long v)) stepClaims.Add((terms[i], v));
            }
            foreach (var (expr, value) in stepClaims)
                if (claims.TryGetValue(expr, out var known))
                {
                    if (known.Contains(value)) verifies = true;
                    else corrects = true;
                }
            foreach (var (expr, value) in stepClaims)
            {
                if (!claims.TryGetValue(expr, out var known)) claims[expr] = known = [];
                known.Add(value);
            }
            if (verifies) verifications++;
            if (corrects) corrections++;
        }
        return (verifications, corrections);
    }

    /// <summary>Per-level statistics of completions with their verdicts (key 0 is every level together).</summary>
    public static SortedDictionary<int, BehaviourStats> ByDifficulty(
        IEnumerable<(int Difficulty, TraceBehaviour Behaviour, bool Correct)> rows)
    {
        var all = rows.ToArray();
        var result = new SortedDictionary<int, BehaviourStats>
        {
            [0] = Stats(all.Select(r => (r.Behaviour, r.Correct))),
        };
        foreach (var g in all.GroupBy(r => r.Difficulty))
            result[g.Key] = Stats(g.Select(r => (r.Behaviour, r.Correct)));
        return result;
    }

    /// <summary>The statistics of a set of completions and their verdicts.</summary>
    public static BehaviourStats Stats(IEnumerable<(TraceBehaviour Behaviour, bool Correct)> rows)
    {
        var all = rows.ToArray();
        var thinking = all.Where(r => r.Behaviour.Thinks).ToArray();
        double Mean(IEnumerable<double> xs)
        {
            var a = xs.ToArray();
            return a.Length == 0 ? double.NaN : a.Average();
        }
        return new BehaviourStats(all.Length, thinking.Length,
            CorrectThinking: thinking.Count(r => r.Correct), IncorrectThinking: thinking.Count(r => !r.Correct),
            ThinkLengthCorrect: Mean(thinking.Where(r => r.Correct).Select(r => (double)r.Behaviour.ThinkingTokens)),
            ThinkLengthIncorrect: Mean(thinking.Where(r => !r.Correct).Select(r => (double)r.Behaviour.ThinkingTokens)),
            VerificationRate: Mean(thinking.Select(r => r.Behaviour.Verifications > 0 ? 1.0 : 0.0)),
            SelfCorrectionRate: Mean(thinking.Select(r => r.Behaviour.SelfCorrections > 0 ? 1.0 : 0.0)),
            VerificationsPerTrace: Mean(thinking.Select(r => (double)r.Behaviour.Verifications)),
            SelfCorrectionsPerTrace: Mean(thinking.Select(r => (double)r.Behaviour.SelfCorrections)));
    }

    /// <summary>
    /// The statistics of completions of <paramref name="problems"/> (same order), each judged by the task's
    /// verifier.
    /// </summary>
    public static SortedDictionary<int, BehaviourStats> Measure(IReadOnlyList<Problem> problems,
        IReadOnlyList<string> completions, VerifiableTask task, ITokenizer tokenizer, bool thinkPrefilled = false)
    {
        if (problems.Count != completions.Count)
            throw new ArgumentException($"behaviour analytics needs one completion per problem: got " +
                                        $"{completions.Count} completions for {problems.Count} problems");
        var accuracy = new AccuracyReward(task);
        return ByDifficulty(problems.Select((p, i) => (p.Difficulty,
            Analyse(completions[i], tokenizer, thinkPrefilled),
            accuracy.Score(new RewardInput(p, completions[i], 0, false)) == 1f)));
    }

    /// <summary>Per-level statistics as JSON: <c>{"all": {...}, "1": {...}, ...}</c>.</summary>
    public static JsonObject ToJson(IReadOnlyDictionary<int, BehaviourStats> byLevel)
    {
        var o = new JsonObject();
        foreach (var (level, s) in byLevel.OrderBy(kv => kv.Key))
            o[level == 0 ? "all" : level.ToString()] = s.ToJson();
        return o;
    }

    /// <summary>
    /// Metrics of one logged step, prefixed (<c>eval/behaviour/…</c> or <c>behaviour/…</c>): every level
    /// together, and per level <c>…/level_k</c> when <paramref name="perLevel"/>. Measures with nothing to average
    /// are left out rather than logged as null.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, double>> Metrics(string prefix,
        IReadOnlyDictionary<int, BehaviourStats> byLevel, bool perLevel)
    {
        foreach (var (level, s) in byLevel.OrderBy(kv => kv.Key))
        {
            if (level != 0 && !perLevel) continue;
            string suffix = level == 0 ? "" : $"/level_{level}";
            (string Name, double Value)[] values =
            [
                ("think_length_correct", s.ThinkLengthCorrect), ("think_length_incorrect", s.ThinkLengthIncorrect),
                ("verification_rate", s.VerificationRate), ("self_correction_rate", s.SelfCorrectionRate),
            ];
            foreach (var (name, value) in values)
                if (double.IsFinite(value)) yield return new($"{prefix}/{name}{suffix}", value);
        }
    }

    private static string Normalise(string term) =>
        new(term.Where(c => char.IsAsciiDigit(c) || c is '+' or '-' or '*' or '/' or '(' or ')').ToArray());

    private static bool IsNumber(string term, out long value) =>
        long.TryParse(term, System.Globalization.NumberStyles.AllowLeadingSign,
            System.Globalization.CultureInfo.InvariantCulture, out value);
}
