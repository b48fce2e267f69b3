// Source: rule-based verifiable rewards of DeepSeek-R1 (arXiv:2501.12948) §2.2.2.
using System.Text;

namespace NativeReasoner.RL;

/// <summary>Which side of a task's train / held-out partition a problem comes from.</summary>
public enum Split { Train, Test }

/// <summary>
/// One generated problem. <see cref="Answer"/> is the ground truth as text (a number, or Countdown's target);
/// <see cref="Key"/> identifies the underlying math and decides the split; <see cref="Numbers"/> carries
/// task data the checker needs (Countdown's numbers).
/// </summary>
public sealed record Problem(string Task, string Prompt, string Answer, int Difficulty, string Key, IReadOnlyList<long>? Numbers = null);

/// <summary>
/// A family of problems with a rule-based checker. Problems are generated from a seed; the held-out
/// (<see cref="Split.Test"/>) split is disjoint from training by construction: a problem belongs to the
/// test split iff a stable hash of its <see cref="Problem.Key"/> falls in the held-out 10%, so no seed or
/// count can put the same problem on both sides. Difficulty levels run from 1 to <see cref="MaxDifficulty"/>.
/// </summary>
public abstract class VerifiableTask
{
    public abstract string Name { get; }
    public abstract int MaxDifficulty { get; }

    /// <summary>One random problem of the given level (either split).</summary>
    protected abstract Problem Sample(Generator rng, int difficulty);

    /// <summary>True if <paramref name="answer"/> (the content of the final \boxed{…}) solves the problem.</summary>
    public abstract bool Check(Problem problem, string answer);

    /// <summary>Percent of the key-hash space held out for evaluation.</summary>
    public const int HeldOutPercent = 10;

    public static bool IsHeldOut(string key) => Fnv1a(key) % 100 < HeldOutPercent;

    /// <summary>
    /// <paramref name="count"/> problems of <paramref name="split"/>, deterministic in <paramref name="seed"/>.
    /// With no difficulty given, levels cycle 1, 2, …, Max so every level is equally represented.
    /// </summary>
    public IReadOnlyList<Problem> Generate(Split split, int count, ulong seed, int? difficulty = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (difficulty is { } d && (d < 1 || d > MaxDifficulty))
            throw new ArgumentOutOfRangeException(nameof(difficulty), $"task '{Name}' has difficulty levels 1..{MaxDifficulty}, got {d}");
        // Separate streams per split, so the train sequence does not change with how many test problems were drawn.
        var rng = new Generator(seed * 0x9E3779B97F4A7C15UL + (split == Split.Test ? 1UL : 0UL) + (ulong)Name.Length);
        var result = new List<Problem>(count);
        for (int i = 0; i < count; i++)
        {
            int level = difficulty ?? 1 + i % MaxDifficulty;
            for (int attempt = 0; ; attempt++)
            {
                var p = Sample(rng, level);
                if (IsHeldOut(p.Key) == (split == Split.Test)) { result.Add(p); break; }
                if (attempt > 100_000)
                    throw new InvalidOperationException($"task '{Name}': no {split} problem found at difficulty {level}");
            }
        }
        return result;
    }

    /// <summary>FNV-1a 64-bit over UTF-8: stable across runs and platforms (string.GetHashCode is not).</summary>
    public static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        return h;
    }

    /// <summary>Uniform integer in [lo, hi].</summary>
    protected static long Uniform(Generator rng, long lo, long hi) => lo + (long)(rng.NextUInt64() % (ulong)(hi - lo + 1));

    protected static T Pick<T>(Generator rng, IReadOnlyList<T> items) => items[rng.NextInt(items.Count)];
}

/// <summary>A task whose answer is a number compared numerically with the truth.</summary>
public abstract class NumericTask : VerifiableTask
{
    public override bool Check(Problem problem, string answer) =>
        AnswerParsing.TryParseNumber(answer, out var got) && AnswerParsing.TryParseNumber(problem.Answer, out var want) && AnswerParsing.NumbersEqual(got, want);
}
