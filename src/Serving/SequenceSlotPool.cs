using NativeReasoner.Model;

namespace NativeReasoner.Serving;

/// <summary>
/// The cache slots of a <see cref="BatchScheduler"/>: one model cache (<see cref="ICausalLM.CreateCache"/> — the
/// compressed MLA cache for DeepSeek families, the GQA K/V cache for dense ones) of <see cref="SlotCount"/> rows ×
/// <see cref="Capacity"/> positions, allocated once; each running sequence holds one row. A finished sequence's row
/// stays filled as an idle slot (least recently used first out), remembering the tokens it holds, so the next turn
/// of the same conversation — whose prompt starts with the previous prompt — reuses the longest common prefix
/// instead of recomputing it. Only the scheduler thread touches a pool.
/// </summary>
public sealed class SequenceSlotPool : IDisposable
{
    private readonly IKvCache _cache;
    private readonly Stack<int> _free = new();
    // Idle rows, least recently released first.
    private readonly LinkedList<int> _idle = new();
    // Per row: the tokens whose entries the cache holds (its length is the row's cache length).
    private readonly List<long>[] _contents;
    private readonly bool[] _inUse;

    private readonly bool _keepPrefixes;

    /// <param name="keepPrefixes">Keep released slots' tokens for prefix reuse (off: released slots are emptied).</param>
    public SequenceSlotPool(ICausalLM model, int slots, int capacity, bool keepPrefixes = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (slots < 1) throw new ArgumentException($"sequence slots must be ≥ 1, got {slots}");
        if (capacity < 2) throw new ArgumentException($"slot capacity must be ≥ 2 positions, got {capacity}");
        _cache = model.CreateCache(slots, capacity);
        _contents = Enumerable.Range(0, slots).Select(_ => new List<long>()).ToArray();
        _inUse = new bool[slots];
        _keepPrefixes = keepPrefixes;
        for (int row = slots - 1; row >= 0; row--) _free.Push(row);
    }

    /// <summary>The model cache whose rows are the slots.</summary>
    public IKvCache Cache => _cache;

    public int SlotCount => _inUse.Length;

    /// <summary>Positions one slot holds (prompt + generated tokens of one sequence).</summary>
    public int Capacity => _cache.Capacity;

    /// <summary>Slots held by running sequences.</summary>
    public int InUse { get; private set; }

    /// <summary>Released slots that still hold a finished sequence's tokens (reusable as a prefix).</summary>
    public int Idle => _idle.Count;

    /// <summary>Empty slots.</summary>
    public int Free => _free.Count;

    /// <summary>Bytes held by the pool's cache.</summary>
    public long BytesAllocated => _cache.BytesAllocated;

    /// <summary>Whether <see cref="Acquire"/> can succeed (a free slot, or an idle one to take over).</summary>
    public bool HasRoom => InUse < SlotCount;

    /// <summary>
    /// A slot for a prompt: the idle slot sharing the longest prefix with it (at most prompt length − 1 tokens,
    /// so at least one token is run to get the next token's logits) when that is at least half of what the slot holds
    /// (a continuation of its conversation) or no slot is free; else a free slot; else the least recently used idle
    /// slot. Returns the row and how many leading prompt tokens it already holds; the row's cache length is set
    /// to that count.
    /// </summary>
    public (int Row, int Reused) Acquire(ReadOnlySpan<long> prompt)
    {
        if (prompt.Length == 0) throw new ArgumentException("a prompt needs at least one token");
        if (!HasRoom) throw new InvalidOperationException($"all {SlotCount} sequence slots are in use");
        LinkedListNode<int>? best = null;
        int bestShared = 0;
        for (var node = _idle.First; node != null; node = node.Next)
        {
            int shared = CommonPrefix(_contents[node.Value], prompt[..^1]);
            if (shared > bestShared) (best, bestShared) = (node, shared);
        }
        // A prompt that shares only a little of a slot (a common system prompt, the template's opening) would wipe
        // out the rest of that cached conversation: it takes a free slot while there is one.
        if (best != null && _free.Count > 0 && 2 * bestShared < _contents[best.Value].Count)
        {
            best = null;
            bestShared = 0;
        }
        int row;
        if (best != null)
        {
            row = best.Value;
            _idle.Remove(best);
        }
        else if (_free.Count > 0) row = _free.Pop();
        else
        {
            row = _idle.First!.Value;
            _idle.RemoveFirst();
        }
        var contents = _contents[row];
        contents.RemoveRange(bestShared, contents.Count - bestShared);
        _cache.Lengths[row] = bestShared;
        _inUse[row] = true;
        InUse++;
        return (row, bestShared);
    }

    /// <summary>Notes tokens just run through the model into <paramref name="row"/> (what its cache holds).</summary>
    public void Record(int row, ReadOnlySpan<long> tokens)
    {
        RequireInUse(row);
        foreach (long t in tokens) _contents[row].Add(t);
        if (_contents[row].Count != _cache.Lengths[row])
            throw new InvalidOperationException(
                $"slot {row} records {_contents[row].Count} tokens but its cache holds {_cache.Lengths[row]}");
    }

    /// <summary>
    /// Gives a slot back: kept as an idle slot for prefix reuse when <paramref name="keepContents"/> and it holds
    /// anything, emptied otherwise (after a failure its cache may hold a partial write).
    /// </summary>
    public void Release(int row, bool keepContents = true)
    {
        RequireInUse(row);
        _inUse[row] = false;
        InUse--;
        if (_keepPrefixes && keepContents && _contents[row].Count > 0 && _contents[row].Count == _cache.Lengths[row])
        {
            _idle.AddLast(row);
            return;
        }
        _contents[row].Clear();
        _cache.Lengths[row] = 0;
        _free.Push(row);
    }

    private void RequireInUse(int row)
    {
        if (row < 0 || row >= SlotCount || !_inUse[row])
            throw new InvalidOperationException($"sequence slot {row} is not in use");
    }

    private static int CommonPrefix(List<long> held, ReadOnlySpan<long> prompt)
    {
        int n = Math.Min(held.Count, prompt.Length), i = 0;
        while (i < n && held[i] == prompt[i]) i++;
        return i;
    }

    public void Dispose() => _cache.Dispose();
}
