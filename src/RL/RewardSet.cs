namespace NativeReasoner.RL;

/// <summary>Rewards of a batch: per function (NaN = skipped) and the weighted total.</summary>
/// <param name="Names">Function names, in order.</param>
/// <param name="PerFunction">[function][sample]; NaN where the function skipped the sample.</param>
/// <param name="Total">Σ_k w_k·r_k over the functions that scored the sample; NaN when all skipped.</param>
public sealed record RewardScores(IReadOnlyList<string> Names, float[][] PerFunction, float[] Total)
{
    /// <summary>nanmean / nanstd (Bessel) of each function, as logged under rewards/NAME/mean|std.</summary>
    public IEnumerable<(string Name, double Mean, double Std)> Summary() =>
        Names.Select((n, k) => (n, Advantages.NanMean(PerFunction[k]), Advantages.NanStd(PerFunction[k])));
}

/// <summary>
/// Weighted reward functions (TRL's reward_funcs + reward_weights, sum-then-normalise): the total of a
/// sample is the weighted sum of the functions that did not skip it.
/// </summary>
public sealed class RewardSet
{
    private readonly List<(IRewardFunction Fn, float Weight)> _items = new();

    public IReadOnlyList<(IRewardFunction Fn, float Weight)> Items => _items;

    public RewardSet Add(IRewardFunction fn, float weight = 1f)
    {
        ArgumentNullException.ThrowIfNull(fn);
        if (!float.IsFinite(weight)) throw new ArgumentOutOfRangeException(nameof(weight), $"reward weight of '{fn.Name}' must be finite, got {weight}");
        if (_items.Any(i => i.Fn.Name == fn.Name)) throw new ArgumentException($"reward '{fn.Name}' added twice (names key the logged metrics)");
        _items.Add((fn, weight));
        return this;
    }

    public RewardScores Score(IReadOnlyList<RewardInput> inputs)
    {
        if (_items.Count == 0) throw new InvalidOperationException("the reward set is empty: add at least one reward function");
        var per = _items.Select(_ => new float[inputs.Count]).ToArray();
        var total = new float[inputs.Count];
        for (int i = 0; i < inputs.Count; i++)
        {
            double sum = 0;
            bool any = false;
            for (int k = 0; k < _items.Count; k++)
            {
                var r = _items[k].Fn.Score(inputs[i]);
                per[k][i] = r ?? float.NaN;
                if (r is { } v) { sum += _items[k].Weight * v; any = true; }
            }
            total[i] = any ? (float)sum : float.NaN;
        }
        return new RewardScores(_items.Select(i => i.Fn.Name).ToArray(), per, total);
    }
}
