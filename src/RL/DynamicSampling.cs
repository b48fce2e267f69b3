namespace NativeReasoner.RL;

/// <summary>
/// One prompt's G sampled completions and their total rewards [G], the unit dynamic sampling keeps or drops.
/// </summary>
public sealed record RolloutGroup(Problem Problem, long[] Prompt, IReadOnlyList<SampledSequence> Samples,
    float[] Rewards);

/// <summary>What dynamic sampling handed to the update, and what it cost.</summary>
/// <param name="Groups">Exactly the groups wanted (or fewer when a round returned none), in draw order.</param>
/// <param name="Rounds">Sampling rounds drawn (1 … the cap).</param>
/// <param name="SampledGroups">Groups drawn over all rounds.</param>
/// <param name="ZeroStdGroups">Of those, groups whose rewards all equal (the numerator of
/// <c>frac_reward_zero_std</c>).</param>
/// <param name="ZeroStdKept">Zero-variance groups that still reached the batch: only when the cap ran out
/// first.</param>
public sealed record DynamicSamplingResult<TGroup>(IReadOnlyList<TGroup> Groups, int Rounds, int SampledGroups,
    int ZeroStdGroups, int ZeroStdKept)
{
    public float FracRewardZeroStd => SampledGroups == 0 ? 0f : (float)ZeroStdGroups / SampledGroups;
}

/// <summary>
/// DAPO's dynamic sampling (arXiv 2503.14476, section 3.2): a group whose G rewards are all equal has zero
/// advantage everywhere and adds no policy gradient, only noise to the normalisers; such groups are dropped and
/// more prompts are sampled until the batch holds the wanted number of groups with reward variance. At most
/// <c>maxRounds</c> sampling rounds are drawn; when the cap runs out first, the batch is topped up with the
/// dropped groups (their advantages are 0) so that every step still trains on a full, fixed-size batch.
/// Without filtering one round is drawn and returned as it is (plain GRPO), with the same statistics.
/// </summary>
public static class DynamicSampling
{
    /// <summary>
    /// Rewards all equal: Bessel std within torch.isclose(std, 0)'s 1e-8, as TRL's <c>frac_reward_zero_std</c>
    /// counts them. NaN rewards (skipped) are left out; a group with fewer than two has no std and is kept.
    /// </summary>
    public static bool HasZeroStd(ReadOnlySpan<float> groupRewards) =>
        Math.Abs(Advantages.NanStd(groupRewards)) <= 1e-8;

    /// <param name="groupsWanted">Groups the update takes (prompts per step).</param>
    /// <param name="maxRounds">Cap on sampling rounds, the first included (≥ 1).</param>
    /// <param name="filter">False: one round, nothing dropped (plain GRPO).</param>
    /// <param name="drawRound">Samples and scores one round's groups; its argument is the round index (0
    /// first).</param>
    /// <param name="rewardsOf">A group's total rewards [G].</param>
    public static DynamicSamplingResult<TGroup> Fill<TGroup>(int groupsWanted, int maxRounds, bool filter,
        Func<int, IReadOnlyList<TGroup>> drawRound, Func<TGroup, float[]> rewardsOf)
    {
        ArgumentNullException.ThrowIfNull(rewardsOf);
        return Fill(groupsWanted, maxRounds, filter, drawRound, g => HasZeroStd(rewardsOf(g)));
    }

    /// <summary>
    /// As above, with each group's zero-variance verdict given rather than computed from its rewards: distributed
    /// GRPO draws every group on every rank but scores it on one, and shares the verdicts so that all ranks keep the
    /// same groups.
    /// </summary>
    /// <param name="hasZeroStd">Whether a group's rewards all equal (<see cref="HasZeroStd"/>).</param>
    public static DynamicSamplingResult<TGroup> Fill<TGroup>(int groupsWanted, int maxRounds, bool filter,
        Func<int, IReadOnlyList<TGroup>> drawRound, Func<TGroup, bool> hasZeroStd)
    {
        ArgumentNullException.ThrowIfNull(drawRound);
        ArgumentNullException.ThrowIfNull(hasZeroStd);
        if (groupsWanted < 1)
            throw new ArgumentOutOfRangeException(nameof(groupsWanted),
                $"dynamic sampling: groups wanted must be ≥ 1, got {groupsWanted}");
        if (maxRounds < 1)
            throw new ArgumentOutOfRangeException(nameof(maxRounds),
                $"dynamic sampling: the cap on sampling rounds must be ≥ 1, got {maxRounds}");
        var kept = new List<TGroup>(groupsWanted);
        var dropped = new List<TGroup>();
        int rounds = 0, sampled = 0, zeroStd = 0;
        while (rounds < (filter ? maxRounds : 1) && kept.Count < groupsWanted)
        {
            var groups = drawRound(rounds++);
            foreach (var g in groups)
            {
                sampled++;
                bool flat = hasZeroStd(g);
                if (flat) zeroStd++;
                if (flat && filter) dropped.Add(g);
                else if (kept.Count < groupsWanted) kept.Add(g);
            }
        }
        int topUp = Math.Min(groupsWanted - kept.Count, dropped.Count);
        kept.AddRange(dropped.Take(topUp));
        int zeroKept = filter ? topUp : kept.Count(hasZeroStd);
        return new DynamicSamplingResult<TGroup>(kept, rounds, sampled, zeroStd, zeroKept);
    }
}
