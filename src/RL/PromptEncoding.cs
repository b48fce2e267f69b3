// Source: transformers' PreTrainedTokenizerBase.__call__ with add_special_tokens=True (the default when a prompt
//         string is tokenized for generate), which puts BOS first for tokenizers configured with add_bos_token.
namespace NativeReasoner.RL;

/// <summary>
/// How a prompt's text becomes the ids a model is given: the plain encoding, with the tokenizer's BOS in front
/// when its configuration asks for one (tokenizer_config.json's <c>add_bos_token</c>, or a post-processor that adds
/// it — Llama 3, DeepSeek-V3/R1) and the text does not already begin with it (a chat template or prompt template
/// that writes <c>bos_token</c> itself). A trailing EOS the configuration may add is left out: a prompt goes on.
/// </summary>
public static class PromptEncoding
{
    /// <summary>The prompt's ids (see <see cref="PromptEncoding"/>).</summary>
    public static long[] EncodePrompt(this ITokenizer tokenizer, string text)
    {
        var plain = tokenizer.Encode(text);
        bool startsWithBos = plain.Length > 0 && plain[0] == tokenizer.BosId;
        if (tokenizer.BosId < 0 || startsWithBos || !AddsBos(tokenizer)) return Widen(plain, 0);
        var ids = Widen(plain, 1);
        ids[0] = tokenizer.BosId;
        return ids;
    }

    /// <summary>True when the tokenizer's own special tokens around a sequence begin with BOS.</summary>
    public static bool AddsBos(ITokenizer tokenizer)
    {
        if (tokenizer.BosId < 0) return false;
        // The special tokens are what encoding with them adds to an empty text's nothing.
        var framed = tokenizer.Encode("", addSpecialTokens: true);
        return framed.Length > 0 && framed[0] == tokenizer.BosId;
    }

    private static long[] Widen(int[] ids, int offset)
    {
        var wide = new long[ids.Length + offset];
        for (int i = 0; i < ids.Length; i++) wide[i + offset] = ids[i];
        return wide;
    }
}
