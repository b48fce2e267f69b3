// Source: a synthetic verifiable word-problem task in the style of GSM8K (arXiv:2110.14168).
namespace NativeReasoner.RL;

/// <summary>
/// Templated story problems (the seed's apples): a starting count, then events that sell / give away /
/// eat some or make more arrive, then "how many now?". Levels: 1–3 events with growing numbers;
/// level 4 adds an arrival of k boxes of n (a multiplication). The count never goes negative. The split
/// key is the arithmetic (start and signed changes), not the names, so a reworded copy of a held-out
/// problem cannot appear in training.
/// </summary>
public sealed class WordProblemTask : NumericTask
{
    private static readonly string[] Names = ["Tom", "Anna", "Ravi", "Mei", "Lucas", "Sara", "Omar", "Nina"];
    private static readonly string[] Items = ["apples", "oranges", "books", "marbles", "pencils", "cookies"];
    private static readonly string[] Removals = ["sells {0} {1}", "gives away {0} {1}", "loses {0} {1}", "uses {0} {1}"];
    private static readonly string[] Arrivals = ["{0} more {1} arrive", "a friend brings {0} {1}", "{0} {1} are delivered", "they buy {0} {1}"];

    public override string Name => "word";
    public override int MaxDifficulty => 4;

    protected override Problem Sample(Generator rng, int difficulty)
    {
        string who = Pick(rng, Names), item = Pick(rng, Items);
        long max = difficulty switch { 1 => 20, 2 => 50, _ => 99 };
        long count = Uniform(rng, 5, max);
        int events = Math.Min(difficulty, 3);
        var text = new List<string> { $"{who} has {count} {item}." };
        var key = new List<string> { count.ToString() };
        for (int e = 0; e < events; e++)
        {
            bool remove = count > 1 && rng.NextInt(2) == 0;
            if (remove)
            {
                long k = Uniform(rng, 1, count);
                count -= k;
                text.Add(Capitalise(e == 0 ? $"{who} " : $"then {who} ") + string.Format(Pick(rng, Removals), k, item) + ".");
                key.Add("-" + k);
            }
            else
            {
                long k = Uniform(rng, 1, max);
                count += k;
                text.Add(Capitalise(e == 0 ? "" : "then ") + string.Format(Pick(rng, Arrivals), k, item) + ".");
                key.Add("+" + k);
            }
        }
        if (difficulty >= 4)
        {
            long boxes = Uniform(rng, 2, 9), per = Uniform(rng, 2, 12);
            count += boxes * per;
            text.Add($"Finally {boxes} boxes with {per} {item} each arrive.");
            key.Add($"+{boxes}*{per}");
        }
        text.Add($"How many {item} does {who} have now?");
        return new Problem(Name, string.Join(" ", text), count.ToString(), difficulty, string.Join(",", key));
    }

    private static string Capitalise(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
