// Source: a synthetic verifiable task in the style of TinyZero / open-r1 rule-based rewards.
namespace NativeReasoner.RL;

/// <summary>
/// <c>What is 37 * 46?</c> Levels: 1 one-digit ±, 2 two-digit ±, 3 two-digit × one-digit, 4 two-digit ×
/// two-digit, 5 three-digit × two-digit.
/// </summary>
public sealed class ArithmeticTask : NumericTask
{
    public override string Name => "arithmetic";
    public override int MaxDifficulty => 5;

    protected override Problem Sample(Generator rng, int difficulty)
    {
        long a, b;
        char op;
        switch (difficulty)
        {
            case 1: a = Uniform(rng, 0, 9); b = Uniform(rng, 0, 9); op = rng.NextInt(2) == 0 ? '+' : '-'; break;
            case 2: a = Uniform(rng, 10, 99); b = Uniform(rng, 10, 99); op = rng.NextInt(2) == 0 ? '+' : '-'; break;
            case 3: a = Uniform(rng, 10, 99); b = Uniform(rng, 2, 9); op = '*'; break;
            case 4: a = Uniform(rng, 10, 99); b = Uniform(rng, 10, 99); op = '*'; break;
            default: a = Uniform(rng, 100, 999); b = Uniform(rng, 10, 99); op = '*'; break;
        }
        long answer = op switch { '+' => a + b, '-' => a - b, _ => a * b };
        return new Problem(Name, $"What is {a} {op} {b}?", answer.ToString(), difficulty, $"{a}{op}{b}");
    }
}

/// <summary>
/// <c>3x + 7 = 22. What is 5x - 3?</c> with an integer solution. Levels: 1 <c>x + b = c</c> asking x,
/// 2 <c>ax + b = c</c> asking x, 3 asking <c>dx ± e</c>, 4 negative solutions and coefficients.
/// </summary>
public sealed class LinearEquationTask : NumericTask
{
    public override string Name => "linear";
    public override int MaxDifficulty => 4;

    protected override Problem Sample(Generator rng, int difficulty)
    {
        long x = difficulty >= 4 ? Uniform(rng, -12, 12) : Uniform(rng, 0, 12);
        long a = difficulty == 1 ? 1 : difficulty >= 4 ? NonZero(rng, -9, 9) : Uniform(rng, 2, 9);
        long b = difficulty >= 4 ? Uniform(rng, -20, 20) : Uniform(rng, 1, 20);
        long c = a * x + b;
        string lhs = $"{Term(a)} {Signed(b)}";
        if (difficulty <= 2)
            return new Problem(Name, $"{lhs} = {c}. What is x?", x.ToString(), difficulty, $"{a},{b},{c}|x");
        long d = difficulty >= 4 ? NonZero(rng, -9, 9) : Uniform(rng, 2, 9);
        long e = Uniform(rng, 1, 20) * (rng.NextInt(2) == 0 ? 1 : -1);
        return new Problem(Name, $"{lhs} = {c}. What is {Term(d)} {Signed(e)}?", (d * x + e).ToString(), difficulty, $"{a},{b},{c}|{d},{e}");
    }

    private static long NonZero(Generator rng, long lo, long hi)
    {
        long v;
        do v = Uniform(rng, lo, hi); while (v == 0);
        return v;
    }

    // "x", "-x", "3x"
    private static string Term(long a) => a switch { 1 => "x", -1 => "-x", _ => $"{a}x" };

    // "+ 7" / "- 7" (a 0 constant is written "+ 0": rare and still correct)
    private static string Signed(long b) => b < 0 ? $"- {-b}" : $"+ {b}";
}
