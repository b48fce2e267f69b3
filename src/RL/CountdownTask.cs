// Source: TinyZero's countdown task (Jiayi-Pan/TinyZero, countdown reward).
namespace NativeReasoner.RL;

/// <summary>
/// Countdown (as in TinyZero): reach a target with the given numbers and + − × /, each number at most
/// once. The answer is an expression; <see cref="Check"/> parses it, checks that it uses only given numbers
/// (as a multiset) and evaluates it exactly (rationals, no rounding) to the target. Every generated target
/// is reachable: it is the value of a random expression over all the numbers. Levels: 1 three numbers up
/// to 10, 2 three up to 25, 3 four up to 25, 4 five up to 50. The split key is the sorted numbers and target.
/// </summary>
public sealed class CountdownTask : VerifiableTask
{
    public override string Name => "countdown";
    public override int MaxDifficulty => 4;

    protected override Problem Sample(Generator rng, int difficulty)
    {
        var (n, max) = difficulty switch { 1 => (3, 10), 2 => (3, 25), 3 => (4, 25), _ => (5, 50) };
        while (true)
        {
            var nums = Enumerable.Range(0, n).Select(_ => Uniform(rng, 1, max)).ToArray();
            // Combine in a random order with random operators; keep integer, positive, moderate targets.
            var values = nums.Select(v => new Rational(v, 1)).ToList();
            bool ok = true;
            while (values.Count > 1 && ok)
            {
                int i = rng.NextInt(values.Count);
                var a = values[i];
                values.RemoveAt(i);
                int j = rng.NextInt(values.Count);
                var b = values[j];
                values.RemoveAt(j);
                Rational? r = rng.NextInt(4) switch
                {
                    0 => a + b,
                    1 => a - b,
                    2 => a * b,
                    _ => b.IsZero ? null : a / b,
                };
                if (r is not { } rv || !rv.IsInteger || rv.Num <= 0 || rv.Num > 1000) ok = false;
                else values.Add(rv);
            }
            if (!ok) continue;
            long target = values[0].Num;
            var sorted = nums.OrderBy(v => v).ToArray();
            string list = string.Join(", ", nums);
            var prompt = $"Using the numbers [{list}], create an equation that equals {target}. You can use +, -, * and / and each number at most once.";
            return new Problem(Name, prompt, target.ToString(), difficulty, $"{string.Join(",", sorted)}->{target}", nums);
        }
    }

    public override bool Check(Problem problem, string answer)
    {
        if (problem.Numbers == null || !long.TryParse(problem.Answer, out var target)) return false;
        var expr = answer;
        // "3 * 7 + 25 = 46" is accepted as the expression "3 * 7 + 25".
        int eq = expr.IndexOf('=');
        if (eq >= 0) expr = expr[..eq];
        expr = expr.Replace(@"\times", "*").Replace(@"\cdot", "*").Replace("×", "*").Replace(@"\div", "/").Replace("÷", "/");
        if (!ExactExpression.TryEvaluate(expr, out var value, out var used)) return false;
        // Each given number at most once: the literals must be a sub-multiset of the numbers.
        var available = problem.Numbers.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        foreach (var u in used)
        {
            if (!available.TryGetValue(u, out var c) || c == 0) return false;
            available[u] = c - 1;
        }
        return value.IsInteger && value.Num == target;
    }
}

/// <summary>An exact fraction num/den with den &gt; 0, reduced. Overflow throws (checked).</summary>
public readonly record struct Rational
{
    public long Num { get; }
    public long Den { get; }

    public Rational(long num, long den)
    {
        if (den == 0) throw new DivideByZeroException();
        if (den < 0) { num = checked(-num); den = checked(-den); }
        long g = Gcd(Math.Abs(num), den);
        Num = g == 0 ? 0 : num / g;
        Den = g == 0 ? 1 : den / g;
    }

    public bool IsInteger => Den == 1;
    public bool IsZero => Num == 0;

    private static long Gcd(long a, long b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }

    public static Rational operator +(Rational a, Rational b) => new(checked(a.Num * b.Den + b.Num * a.Den), checked(a.Den * b.Den));
    public static Rational operator -(Rational a, Rational b) => new(checked(a.Num * b.Den - b.Num * a.Den), checked(a.Den * b.Den));
    public static Rational operator *(Rational a, Rational b) => new(checked(a.Num * b.Num), checked(a.Den * b.Den));
    public static Rational operator /(Rational a, Rational b) => new(checked(a.Num * b.Den), checked(a.Den * b.Num));
    public static Rational operator -(Rational a) => new(checked(-a.Num), a.Den);
}

/// <summary>
/// A recursive-descent evaluator for <c>+ - * / ( )</c>, unary minus and non-negative integer literals,
/// in exact rationals. Reports the literals it used. Anything else (letters, decimals, empty input,
/// division by zero, overflow) fails.
/// </summary>
public static class ExactExpression
{
    public static bool TryEvaluate(string text, out Rational value, out List<long> literals)
    {
        literals = new List<long>();
        value = default;
        var p = new Parser(text, literals);
        try
        {
            p.SkipSpace();
            if (p.AtEnd) return false;
            value = p.Sum();
            p.SkipSpace();
            return p.AtEnd;
        }
        catch (Exception e) when (e is FormatException or DivideByZeroException or OverflowException)
        {
            return false;
        }
    }

    private sealed class Parser(string s, List<long> literals)
    {
        private int _i;
        public bool AtEnd => _i >= s.Length;

        public void SkipSpace()
        {
            while (_i < s.Length && char.IsWhiteSpace(s[_i])) _i++;
        }

        private bool Eat(char c)
        {
            SkipSpace();
            if (_i < s.Length && s[_i] == c) { _i++; return true; }
            return false;
        }

        public Rational Sum()
        {
            var v = Product();
            while (true)
            {
                if (Eat('+')) v += Product();
                else if (Eat('-')) v -= Product();
                else return v;
            }
        }

        private Rational Product()
        {
            var v = Unary();
            while (true)
            {
                if (Eat('*')) v *= Unary();
                else if (Eat('/'))
                {
                    var d = Unary();
                    if (d.IsZero) throw new DivideByZeroException();
                    v /= d;
                }
                else return v;
            }
        }

        private Rational Unary() => Eat('-') ? -Unary() : Atom();

        private Rational Atom()
        {
            if (Eat('('))
            {
                var v = Sum();
                if (!Eat(')')) throw new FormatException("missing )");
                return v;
            }
            SkipSpace();
            int start = _i;
            while (_i < s.Length && char.IsAsciiDigit(s[_i])) _i++;
            if (_i == start || _i - start > 15) throw new FormatException("number expected");
            long n = long.Parse(s.AsSpan(start, _i - start), System.Globalization.CultureInfo.InvariantCulture);
            literals.Add(n);
            return new Rational(n, 1);
        }
    }
}
