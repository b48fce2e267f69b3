// Source: worked <think> traces in the format of DeepSeek-R1 (arXiv:2501.12948).
using System.Text;

namespace NativeReasoner.RL;

/// <summary>
/// Synthetic worked solutions for pre-training / cold-start SFT: a <c>&lt;think&gt;</c> trace that breaks the
/// problem down, then the boxed answer — or the boxed answer alone (a "direct" answer), so a model sees
/// both and RL can learn when thinking pays. Arithmetic: <c>15 * 17 = 15 * 10 + 15 * 7 = 150 + 105 = 255</c>;
/// linear equations: isolate x, then evaluate the asked expression; word problems: the running count.
/// Countdown has no trace (its target comes from an expression that is not kept).
/// </summary>
public static class ThinkTraces
{
    public static bool Supports(string task) => task is "arithmetic" or "ladder" or "linear" or "word";

    /// <summary>The completion text for <paramref name="p"/>: with a think trace, or the answer only.</summary>
    public static string Completion(Problem p, bool think)
    {
        var answer = $"\\boxed{{{p.Answer}}}";
        if (!think) return answer;
        // The ladder is written compactly (no space after </think>): every character costs a tiny model.
        return $"{CharTokenizer.ThinkStart}{Trace(p)}{CharTokenizer.ThinkEnd}{(p.Task == "ladder" ? "" : " ")}{answer}";
    }

    public static SftExample Example(Problem p, bool think) => new(p.Prompt, Completion(p, think), p.Answer, p.Difficulty);

    public static string Trace(Problem p) => p.Task switch
    {
        "arithmetic" => Arithmetic(p.Key),
        "ladder" => LadderTask.Trace(p.Key),
        "linear" => Linear(p.Key),
        "word" => Word(p.Key),
        _ => throw new NotSupportedException($"no think traces for task '{p.Task}'; supported: arithmetic, linear, word"),
    };

    private static string Arithmetic(string key)
    {
        int opAt = key.IndexOfAny(['+', '-', '*'], 1);
        long a = long.Parse(key[..opAt]), b = long.Parse(key[(opAt + 1)..]);
        char op = key[opAt];
        long tens = b / 10 * 10, ones = b % 10;
        switch (op)
        {
            case '+' when tens > 0 && ones > 0:
                return $"{a} + {b} = {a} + {tens} + {ones} = {a + tens} + {ones} = {a + b}";
            case '-' when tens > 0 && ones > 0:
                return $"{a} - {b} = {a} - {tens} - {ones} = {a - tens} - {ones} = {a - b}";
            case '*' when b >= 10 && ones > 0:
                return $"{a} * {b} = {a} * {tens} + {a} * {ones} = {a * tens} + {a * ones} = {a * b}";
            case '*' when a >= 10 && b < 10:
                {
                    long at = a / 10 * 10, ao = a % 10;
                    return ao == 0 ? $"{a} * {b} = {a * b}" : $"{a} * {b} = {at} * {b} + {ao} * {b} = {at * b} + {ao * b} = {a * b}";
                }
            default:
                return $"{a} {op} {b} = {(op == '+' ? a + b : op == '-' ? a - b : a * b)}";
        }
    }

    // key "a,b,c|x" or "a,b,c|d,e": a·x + b = c, asked x or d·x + e.
    private static string Linear(string key)
    {
        var parts = key.Split('|');
        var abc = parts[0].Split(',').Select(long.Parse).ToArray();
        long a = abc[0], b = abc[1], c = abc[2], x = (c - b) / a;
        var sb = new StringBuilder($"{(a == 1 ? "" : a.ToString())}x = {c} - {Paren(b)} = {c - b}");
        if (a != 1) sb.Append($", x = {c - b} / {Paren(a)} = {x}");
        if (parts[1] != "x")
        {
            var de = parts[1].Split(',').Select(long.Parse).ToArray();
            long d = de[0], e = de[1];
            sb.Append($", {d} * {Paren(x)} + {Paren(e)} = {d * x} + {Paren(e)} = {d * x + e}");
        }
        return sb.ToString();
    }

    // key "start,-k,+k,+m*n": the running count.
    private static string Word(string key)
    {
        var parts = key.Split(',');
        long count = long.Parse(parts[0]);
        var sb = new StringBuilder(count.ToString());
        foreach (var step in parts.Skip(1))
        {
            long delta;
            if (step.Contains('*'))
            {
                var mn = step[1..].Split('*').Select(long.Parse).ToArray();
                delta = mn[0] * mn[1];
                sb.Append($" + {mn[0]} * {mn[1]} = {count} + {delta}");
            }
            else
            {
                delta = long.Parse(step);
                sb.Append(delta < 0 ? $" - {-delta}" : $" + {delta}");
            }
            count += delta;
            sb.Append($" = {count}");
        }
        return sb.ToString();
    }

    private static string Paren(long v) => v < 0 ? $"({v})" : v.ToString();
}
