using NativeReasoner.Model;
using NativeReasoner.Serving;
using Xunit;
using static NativeReasoner.Tests.Model.ModelTestUtil;

namespace NativeReasoner.Tests.Serving;

/// <summary>
/// <see cref="SequenceSlotPool"/>'s bookkeeping: counters, which slot a prompt gets (continuation, free, least
/// recently used), and misuse. The cache lengths are set by hand where a forward would set them.
/// </summary>
public class SequenceSlotPoolTests
{
    private static void Fill(SequenceSlotPool pool, int row, long[] tokens)
    {
        pool.Cache.Lengths[row] += tokens.Length;   // what the model's forward would have done
        pool.Record(row, tokens);
    }

    [Fact]
    public void Slots_AreReusedByContinuation_FreeFirstOtherwise_ThenLeastRecentlyUsed()
    {
        using var model = CausalLMRegistry.Load(Fixture("qwen2-tiny-ref"));
        using var pool = new SequenceSlotPool(model, slots: 2, capacity: 32);
        Assert.Equal((2, 0, 0, 2), (pool.SlotCount, pool.InUse, pool.Idle, pool.Free));
        Assert.Equal(2 * 32 * pool.Cache.BytesPerToken, pool.BytesAllocated);

        var (a, reusedA) = pool.Acquire([1, 2, 3, 4]);
        Assert.Equal(0, reusedA);
        Fill(pool, a, [1, 2, 3, 4, 9, 9]);
        Assert.Equal((1, 0, 1), (pool.InUse, pool.Idle, pool.Free));
        pool.Release(a);
        Assert.Equal((0, 1, 1), (pool.InUse, pool.Idle, pool.Free));

        // Shares 1 of the 6 held tokens: a free slot is taken, the cached conversation stays.
        var (b, reusedB) = pool.Acquire([1, 7, 7]);
        Assert.NotEqual(a, b);
        Assert.Equal(0, reusedB);
        Fill(pool, b, [1, 7, 7]);
        pool.Release(b);
        Assert.Equal((0, 2, 0), (pool.InUse, pool.Idle, pool.Free));

        // A continuation of the first: all it shares (never the prompt's last token), the cache length cut to it.
        var (c, reusedC) = pool.Acquire([1, 2, 3, 4, 9, 8, 5]);
        Assert.Equal((a, 5), (c, reusedC));
        Assert.Equal(5, pool.Cache.Lengths[a]);
        var (d, reusedD) = pool.Acquire([1, 2, 3, 4, 9, 9]);
        // The only idle slot left is b's (shares [1]); with nothing free it is taken over.
        Assert.Equal((b, 1), (d, reusedD));
        Assert.False(pool.HasRoom);
        var e = Assert.Throws<InvalidOperationException>(() => pool.Acquire([1]));
        Assert.Contains("all 2 sequence slots are in use", e.Message);

        // A failed sequence's slot is emptied, not kept.
        pool.Release(d, keepContents: false);
        Assert.Equal((1, 0, 1), (pool.InUse, pool.Idle, pool.Free));
        Assert.Equal(0, pool.Cache.Lengths[d]);
        pool.Release(c);
        e = Assert.Throws<InvalidOperationException>(() => pool.Release(c));
        Assert.Contains($"sequence slot {c} is not in use", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => pool.Record(c, [1]));
        Assert.Contains("is not in use", e.Message);
        Assert.Throws<ArgumentException>(() => pool.Acquire([]));
    }

    [Fact]
    public void WithoutPrefixReuse_ReleasedSlotsAreEmptied()
    {
        using var model = CausalLMRegistry.Load(Fixture("deepseek-v3-tiny-yarn"));
        using var pool = new SequenceSlotPool(model, slots: 1, capacity: 16, keepPrefixes: false);
        var (row, _) = pool.Acquire([3, 4, 5]);
        Fill(pool, row, [3, 4, 5]);
        pool.Release(row);
        Assert.Equal((0, 0, 1), (pool.InUse, pool.Idle, pool.Free));
        Assert.Equal(0, pool.Acquire([3, 4, 5, 6]).Reused);
        Assert.Throws<ArgumentException>(() => new SequenceSlotPool(model, slots: 0, capacity: 16));
    }
}
