namespace NativeReasoner.Kernels;

/// <summary>
/// The query-head → K/V-head mapping of grouped-query attention (GQA, arXiv:2305.13245), shared by every
/// backend: query row bh (of BH = B·Hq) reads K/V row bh / kvGroup (of B·Hkv), kvGroup = Hq / Hkv. Because the
/// query heads of one batch item are consecutive, this is HF's repeat_kv order: query heads
/// g·kvGroup … (g + 1)·kvGroup − 1 share K/V head g.
/// </summary>
public static class AttentionHeads
{
    /// <summary>
    /// Checks kvGroup ≥ 1 and BH a multiple of it; returns the number of K/V rows BH / kvGroup. Throws an
    /// <see cref="ArgumentException"/> naming the op and both values otherwise.
    /// </summary>
    public static int KvRows(string op, int BH, int kvGroup)
    {
        if (kvGroup < 1)
            throw new ArgumentOutOfRangeException(nameof(kvGroup),
                $"{op}: kvGroup (query heads per K/V head) must be at least 1, got {kvGroup}");
        if (BH < 0 || BH % kvGroup != 0)
            throw new ArgumentException(
                $"{op}: the batch·query-heads count {BH} must be a non-negative multiple of kvGroup {kvGroup}",
                nameof(BH));
        return BH / kvGroup;
    }
}
