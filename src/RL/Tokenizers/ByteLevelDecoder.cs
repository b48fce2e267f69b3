// Source: Hugging Face tokenizers' ByteLevel decoder (tokenizers/src/pre_tokenizers/byte_level.rs) and
// transformers' clean_up_tokenization (tokenization_utils_base.py).
using System.Text;

namespace NativeReasoner.RL.Tokenizers;

/// <summary>
/// Turns byte-level tokens back into text: their characters are mapped back to bytes and the bytes decoded as
/// UTF-8, with U+FFFD for each invalid sequence (the same replacement rule as Rust's from_utf8_lossy and
/// JavaScript's TextDecoder). Added tokens are written as their content.
/// </summary>
public static class ByteLevelDecoder
{
    /// <summary>
    /// Appends the bytes a byte-level token stands for. A token with a character outside the alphabet is taken
    /// as plain text (its UTF-8 bytes), as the Rust decoder does.
    /// </summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        int start = bytes.Count;
        foreach (char c in token)
        {
            int b = ByteLevelAlphabet.CharToByte(c);
            if (b < 0)
            {
                bytes.RemoveRange(start, bytes.Count - start);
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
            bytes.Add((byte)b);
        }
    }

    /// <summary>Decodes the pending bytes into <paramref name="text"/> and clears them.</summary>
    public static void Flush(List<byte> bytes, StringBuilder text)
    {
        if (bytes.Count == 0) return;
        text.Append(Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
        bytes.Clear();
    }

    /// <summary>
    /// transformers' <c>clean_up_tokenization</c>: removes the space before punctuation and English contractions
    /// (applied when tokenizer_config.json's <c>clean_up_tokenization_spaces</c> is true).
    /// </summary>
    public static string CleanUpTokenization(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}
