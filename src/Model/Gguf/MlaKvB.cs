// Source: llama.cpp's convert_hf_to_gguf.py, DeepseekV2Model.modify_tensors (kv_b_proj split into k_b_proj, transposed,
// and v_b_proj for the absorbed MLA attention) and its loader's shapes for attn_k_b / attn_v_b (src/llama-model.cpp).
namespace NativeReasoner.Model.Gguf;

/// <summary>
/// MLA's kv_b_proj in GGUF. HF stores one matrix [H·(n + v), r] whose rows are, per head, n key rows then v value rows
/// (n = qk_nope_head_dim, v = v_head_dim, r = kv_lora_rank). llama.cpp's MLA files split it per head into
/// attn_k_b [H, r, n] (the key half transposed, so the absorbed query product reads it row by row) and
/// attn_v_b [H, v, r]; older files hold the joined attn_kv_b. Both directions work on float32 values.
/// </summary>
public static class MlaKvB
{
    /// <summary>The per-layer tensor suffix of the joined form.</summary>
    public const string JoinedSuffix = "attn_kv_b.weight";

    public const string KeySuffix = "attn_k_b.weight";
    public const string ValueSuffix = "attn_v_b.weight";

    /// <summary>The block prefix ("blk.N.") of a joined tensor name.</summary>
    public static string BlockOf(string joinedName) => joinedName[..^JoinedSuffix.Length];

    /// <summary>kv_b [H·(n + v), r] → (k_b [H, r, n], v_b [H, v, r]), all row-major.</summary>
    public static (float[] KeyB, float[] ValueB) Split(ReadOnlySpan<float> kvB, int heads, int nope, int value,
        int rank)
    {
        Check(kvB.Length, heads, nope, value, rank);
        var k = new float[heads * rank * nope];
        var v = new float[heads * value * rank];
        for (int h = 0; h < heads; h++)
        {
            int headRow = h * (nope + value);
            for (int i = 0; i < nope; i++)
                for (int c = 0; c < rank; c++)
                    k[(h * rank + c) * nope + i] = kvB[(headRow + i) * rank + c];
            kvB.Slice((headRow + nope) * rank, value * rank).CopyTo(v.AsSpan(h * value * rank, value * rank));
        }
        return (k, v);
    }

    /// <summary>(k_b [H, r, n], v_b [H, v, r]) → kv_b [H·(n + v), r] in <paramref name="kvB"/>.</summary>
    public static void Join(ReadOnlySpan<float> keyB, ReadOnlySpan<float> valueB, Span<float> kvB, int heads,
        int nope, int value, int rank)
    {
        Check(kvB.Length, heads, nope, value, rank);
        if (keyB.Length != heads * rank * nope || valueB.Length != heads * value * rank)
            throw new ArgumentException($"k_b holds {keyB.Length} values and v_b {valueB.Length}, expected " +
                $"{heads * rank * nope} and {heads * value * rank}");
        for (int h = 0; h < heads; h++)
        {
            int headRow = h * (nope + value);
            for (int c = 0; c < rank; c++)
                for (int i = 0; i < nope; i++)
                    kvB[(headRow + i) * rank + c] = keyB[(h * rank + c) * nope + i];
            valueB.Slice(h * value * rank, value * rank).CopyTo(kvB.Slice((headRow + nope) * rank, value * rank));
        }
    }

    private static void Check(int length, int heads, int nope, int value, int rank)
    {
        if (length != heads * (nope + value) * rank)
            throw new ArgumentException($"kv_b holds {length} values, expected {heads} heads × ({nope} + {value}) " +
                $"rows × {rank}");
    }
}
