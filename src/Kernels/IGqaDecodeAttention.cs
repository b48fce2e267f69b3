namespace NativeReasoner.Kernels;

/// <summary>
/// One decode step of grouped-query attention (arXiv:2305.13245) for a batch of sequences against their K/V
/// caches, each sequence with its own length. A backend that has it (all four backends now) says so by
/// implementing this interface; callers ask for the capability (<c>kernels is IGqaDecodeAttention</c>).
/// </summary>
public unsafe interface IGqaDecodeAttention
{
    /// <summary>
    /// q: [batch, Hq, Dk] (the one new query of every head), kCache: [batch, Hkv, capacity, Dk], vCache:
    /// [batch, Hkv, capacity, Dv], lengths: [batch] host ints, 0 ≤ lengths[b] ≤ capacity → o: [batch, Hq, Dv],
    /// lse: [batch, Hq]. Query head h of sequence b attends to the first lengths[b] rows of K/V head
    /// h / (Hq / Hkv) (HF's repeat_kv order) with no mask (the new token's own K/V is already in the cache);
    /// rows past lengths[b] are never read. A sequence of length 0 gets o = 0 and lse = −∞. Hq must be a
    /// positive multiple of Hkv.
    /// </summary>
    void GqaDecodeAttention(float* q, float* kCache, float* vCache, int* lengths, float* o, float* lse,
        int batch, int Hq, int Hkv, int capacity, int Dk, int Dv, float scale);

    /// <summary>
    /// The argument checks every implementation makes first: an <see cref="ArgumentException"/> naming the bad
    /// value (a head count that does not divide, a length outside 0..capacity, a negative size).
    /// </summary>
    static void Validate(string op, int* lengths, int batch, int Hq, int Hkv, int capacity, int Dk, int Dv)
    {
        if (batch < 0 || capacity < 0 || Dk < 0 || Dv < 0)
            throw new ArgumentException(
                $"{op}: sizes must be non-negative (batch {batch}, capacity {capacity}, Dk {Dk}, Dv {Dv})");
        if (Hkv <= 0 || Hq <= 0 || Hq % Hkv != 0)
            throw new ArgumentException(
                $"{op}: the query heads Hq = {Hq} must be a positive multiple of the K/V heads Hkv = {Hkv}");
        for (int b = 0; b < batch; b++)
            if (lengths[b] < 0 || lengths[b] > capacity)
                throw new ArgumentException(
                    $"{op}: lengths[{b}] = {lengths[b]} is outside 0..{capacity} (the cache capacity)");
    }
}
