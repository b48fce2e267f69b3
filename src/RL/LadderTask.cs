// Source: a graded synthetic arithmetic task (five levels) for the default run.
namespace NativeReasoner.RL;

/// <summary>
/// <c>What is 47 * 6?</c> on a ladder a tiny character-level model can climb in minutes of CPU training —
/// the default task of <c>nr train</c>. Every level is one rung harder to answer directly and needs one more
/// step of worked reasoning: 1 one-digit + one-digit, 2 one-digit × one-digit (a table fact),
/// 3 two-digit + one-digit, 4 two-digit + two-digit, 5 two-digit × one-digit (tens and ones times the
/// digit, then their sum). The traces (<see cref="ThinkTraces"/>) reduce every level to the facts of
/// levels 1 and 2 plus adding to a round number, so thinking pays exactly where the direct answer is out
/// of reach.
/// </summary>
public sealed class LadderTask : NumericTask
{
    /// <param name="drawsUnseenLevel">
    /// True: level 6 (<see cref="UnseenLevel"/>) is a level like the others, so GRPO can draw its training-split
    /// prompts; pre-training always uses the five-level ladder, so it never shows one.
    /// </param>
    public LadderTask(bool drawsUnseenLevel = false) => MaxDifficulty = drawsUnseenLevel ? UnseenLevel : 5;

    public override string Name => "ladder";
    public override int MaxDifficulty { get; }

    protected override Problem Sample(Generator rng, int difficulty)
    {
        long a, b;
        char op;
        switch (difficulty)
        {
            case 1: a = Uniform(rng, 0, 9); b = Uniform(rng, 0, 9); op = '+'; break;
            case 2: a = Uniform(rng, 2, 9); b = Uniform(rng, 2, 9); op = '*'; break;
            case 3: a = Uniform(rng, 10, 99); b = Uniform(rng, 2, 9); op = '+'; break;
            case 4: a = Uniform(rng, 10, 99); b = Uniform(rng, 10, 99); op = '+'; break;
            // Two-digit × two-digit: the unseen level, drawn by GenerateUnseen and by a ladder that draws it.
            case UnseenLevel:
                do a = Uniform(rng, 11, 99); while (a % 10 == 0);
                do b = Uniform(rng, 11, 99); while (b % 10 == 0);
                op = '*';
                break;
            // A round a (40 * 6) would need a trace of its own shape; its ones digit is never 0.
            default: do a = Uniform(rng, 11, 99); while (a % 10 == 0); b = Uniform(rng, 3, 9); op = '*'; break;
        }
        long answer = op == '+' ? a + b : a * b;
        return new Problem(Name, $"What is {a} {op} {b}?", answer.ToString(), difficulty, $"{a}{op}{b}");
    }

    /// <summary>
    /// Level 6, two-digit × two-digit (<c>What is 47 * 36?</c>): above the five levels of pre-training, which never
    /// draws it; GRPO may train on its training split (a ladder built with <c>drawsUnseenLevel</c>), and its held-out
    /// split checks whether RL's thinking reaches a rung that pre-training never showed.
    /// </summary>
    public const int UnseenLevel = 6;

    /// <summary>
    /// <paramref name="count"/> level-6 problems of <paramref name="split"/>, deterministic in
    /// <paramref name="seed"/> (a stream of their own: the other levels' problems do not move).
    /// </summary>
    public IReadOnlyList<Problem> GenerateUnseen(Split split, int count, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new Generator(seed * 0x9E3779B97F4A7C15UL + 0xC0FFEEUL + (split == Split.Test ? 1UL : 0UL));
        var result = new List<Problem>(count);
        while (result.Count < count)
        {
            var p = Sample(rng, UnseenLevel);
            if (IsHeldOut(p.Key) == (split == Split.Test)) result.Add(p);
        }
        return result;
    }

    /// <summary>
    /// The worked solution, compact (a character model pays for every token): <c>3+4=7</c>, <c>3*4=12</c>,
    /// <c>47+8=40+15=55</c>, <c>47+38,7+8=15,40+30=70,70+15=70+10+5=80+5=85</c>,
    /// <c>47*6,7*6=42,40*6=240,240+42=240+40+2=280+2=282</c>. Levels 4 and 5 restate the problem, then write each
    /// fact they use as a step of its own (<c>7+8=15</c>, <c>7*6=42</c>), so every one-digit sum and product appears
    /// with its value in the training traces: the held-out problems of levels 1 and 2 (a few facts out of 100 and 64,
    /// which no training question asks) are then facts the model has used, asked directly — not facts it never saw.
    /// </summary>
    public static string Trace(string key)
    {
        int opAt = key.IndexOfAny(['+', '*'], 1);
        long a = long.Parse(key[..opAt]), b = long.Parse(key[(opAt + 1)..]);
        long at = a / 10 * 10, ao = a % 10, bt = b / 10 * 10, bo = b % 10;
        if (key[opAt] == '+')
        {
            if (a < 10) return $"{a}+{b}={a + b}";
            if (b < 10) return $"{a}+{b}={at}+{ao + b}={a + b}";
            return $"{a}+{b},{ao}+{bo}={ao + bo},{at}+{bt}={at + bt},{at + bt}+{ao + bo}={AddToRound(at + bt, ao + bo)}";
        }
        if (a < 10) return $"{a}*{b}={a * b}";
        return ao == 0 ? $"{a}*{b}={at / 10}*{b}*10={a * b}"
            : $"{a}*{b},{ao}*{b}={ao * b},{at}*{b}={at * b},{at * b}+{ao * b}={AddToRound(at * b, ao * b)}";
    }

    /// <summary>
    /// The end of a trace, <c>round + y</c> written out (round a multiple of ten, y below 100): one digit at a
    /// time when y has two (<c>160+16</c> → <c>160+10+6=170+6=176</c>), so the model never adds two multi-digit
    /// numbers at once — the step where the hard levels went wrong.
    /// </summary>
    private static string AddToRound(long round, long y)
    {
        if (y < 10) return (round + y).ToString();
        long yt = y / 10 * 10, yo = y % 10;
        return $"{round}+{yt}+{yo}={round + yt}+{yo}={round + y}";
    }
}
