// Source: Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units" (arXiv:1508.07909), in
// the form of Hugging Face tokenizers' BPE model (tokenizers/src/models/bpe/{model.rs,word.rs}): the pair of
// lowest merge rank is merged first, leftmost first among equals, until no pair has a merge.
using System.Collections.Concurrent;

namespace NativeReasoner.RL.Tokenizers;

/// <summary>
/// The BPE model of a tokenizer.json: vocabulary, ranked merges and a word cache. A word is merged with a
/// priority queue of candidate pairs (O(n log n) in its length), so a megabyte-long word is no problem.
/// </summary>
public sealed class BpeModel
{
    private const int MaxCachedWordLength = 256;
    private const int MaxCacheEntries = 1 << 17;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    // (left id, right id) → (rank << 32) | merged id
    private readonly Dictionary<long, long> _merges;
    // the vocabulary id of each single BMP character, or −1
    private readonly int[] _charIds = new int[char.MaxValue + 1];
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;

    [ThreadStatic] private static MergeScratch? t_scratch;

    public int UnknownId { get; }
    public bool IgnoreMerges { get; }
    public bool FuseUnknown { get; }
    public int MergeCount => _merges.Count;
    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    /// <summary>Pair merges and heap operations done so far (a work counter for the linear-time tests).</summary>
    public long WorkCounter => Interlocked.Read(ref _work);
    private long _work;

    /// <param name="merges">The merges in rank order, each as its two parts.</param>
    /// <param name="unknownToken">The token used for characters outside the vocabulary, or null to drop them.</param>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        string? unknownToken = null, bool ignoreMerges = false, bool fuseUnknown = false)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        IgnoreMerges = ignoreMerges;
        FuseUnknown = fuseUnknown;
        UnknownId = -1;
        if (unknownToken != null)
        {
            if (!vocab.TryGetValue(unknownToken, out int unk))
                throw new InvalidDataException($"BPE unk_token '{unknownToken}' is not in the vocabulary");
            UnknownId = unk;
        }
        Array.Fill(_charIds, -1);
        foreach (var (token, id) in vocab)
            if (token.Length == 1) _charIds[token[0]] = id;
        _merges = new Dictionary<long, long>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out int l))
                throw new InvalidDataException($"BPE merge #{rank} '{left} {right}': '{left}' is not in the " +
                    $"vocabulary");
            if (!vocab.TryGetValue(right, out int r))
                throw new InvalidDataException($"BPE merge #{rank} '{left} {right}': '{right}' is not in the " +
                    $"vocabulary");
            if (!vocab.TryGetValue(left + right, out int merged))
                throw new InvalidDataException($"BPE merge #{rank} '{left} {right}': the merged token " +
                    $"'{left + right}' is not in the vocabulary");
            // a repeated merge takes its last rank, as HF does
            _merges[PairKey(l, r)] = ((long)rank << 32) | (uint)merged;
        }
    }

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    public int? TokenToId(ReadOnlySpan<char> token) => _vocabBySpan.TryGetValue(token, out int id) ? id : null;

    /// <summary>Appends the ids of one pre-tokenized word (already in the vocabulary's alphabet).</summary>
    public void Encode(ReadOnlySpan<char> word, List<int> output)
    {
        if (word.IsEmpty) return;
        if (IgnoreMerges && _vocabBySpan.TryGetValue(word, out int whole)) { output.Add(whole); return; }
        bool cacheable = word.Length <= MaxCachedWordLength;
        if (cacheable && _cacheBySpan.TryGetValue(word, out var cached)) { output.AddRange(cached); return; }
        int before = output.Count;
        Merge(word, output);
        if (cacheable)
        {
            if (_cache.Count >= MaxCacheEntries) _cache.Clear();
            _cache.TryAdd(word.ToString(), output.GetRange(before, output.Count - before).ToArray());
        }
    }

    private sealed class MergeScratch
    {
        public int[] Ids = new int[64], Prev = new int[64], Next = new int[64];
        // element: position of the pair's left symbol; priority: (rank << 32) | position → lowest rank, leftmost
        public readonly PriorityQueue<int, long> Queue = new();

        public void Ensure(int n)
        {
            if (Ids.Length >= n) return;
            int size = Math.Max(n, Ids.Length * 2);
            Ids = new int[size]; Prev = new int[size]; Next = new int[size];
        }
    }

    private void Merge(ReadOnlySpan<char> word, List<int> output)
    {
        var s = t_scratch ??= new MergeScratch();
        s.Ensure(word.Length);
        int[] ids = s.Ids, prev = s.Prev, next = s.Next;
        // One symbol per character (a surrogate pair is one character of the word); unknown characters
        // become the unknown token (fused when asked) or are dropped.
        int n = 0;
        for (int i = 0; i < word.Length; i++)
        {
            int id;
            if (char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]))
            {
                id = _vocabBySpan.TryGetValue(word.Slice(i, 2), out int pairId) ? pairId : -1;
                i++;
            }
            else id = _charIds[word[i]];
            if (id < 0)
            {
                if (UnknownId < 0) continue;
                if (FuseUnknown && n > 0 && ids[n - 1] == UnknownId) continue;
                id = UnknownId;
            }
            ids[n] = id;
            prev[n] = n - 1;
            next[n] = n + 1;
            n++;
        }
        if (n == 0) return;
        next[n - 1] = -1;
        var queue = s.Queue;
        queue.Clear();
        long work = 0;
        for (int i = 0; i + 1 < n; i++)
        {
            if (!_merges.TryGetValue(PairKey(ids[i], ids[i + 1]), out long m)) continue;
            queue.Enqueue(i, (m & ~0xFFFFFFFFL) | (uint)i);
            work++;
        }
        while (queue.TryDequeue(out int pos, out long priority))
        {
            work++;
            int right = next[pos];
            if (ids[pos] < 0 || right < 0) continue;
            // a stale entry: the pair at pos changed since it was queued (ranks are unique per pair)
            if (!_merges.TryGetValue(PairKey(ids[pos], ids[right]), out long m)
                || (m >> 32) != (priority >> 32)) continue;
            ids[pos] = (int)(uint)m;
            ids[right] = -1;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0 && _merges.TryGetValue(PairKey(ids[prev[pos]], ids[pos]), out long ml))
            { queue.Enqueue(prev[pos], (ml & ~0xFFFFFFFFL) | (uint)prev[pos]); work++; }
            if (next[pos] >= 0 && _merges.TryGetValue(PairKey(ids[pos], ids[next[pos]]), out long mr))
            { queue.Enqueue(pos, (mr & ~0xFFFFFFFFL) | (uint)pos); work++; }
        }
        Interlocked.Add(ref _work, work);
        for (int i = 0; i >= 0; i = next[i]) output.Add(ids[i]);
    }
}
