// Source: Hugging Face tokenizers' normalizers (tokenizers/src/normalizers/{unicode.rs,utils.rs}) as they appear
// in tokenizer.json: "NFC", "NFD", "NFKC", "NFKD", "Lowercase" and "Sequence".
using System.Text;

namespace NativeReasoner.RL.Tokenizers;

/// <summary>A tokenizer.json normalizer: rewrites the text before it is pre-tokenized.</summary>
public abstract class Normalizer
{
    /// <summary>The normalized text; returns <paramref name="text"/> itself when nothing changes.</summary>
    public abstract string Normalize(string text);
}

/// <summary>
/// Unicode normalization (NFC, NFD, NFKC, NFKD). Lone surrogates are kept as they are (JavaScript and Rust
/// leave them alone too; .NET's <see cref="string.Normalize(NormalizationForm)"/> would throw on them), and
/// the text between them is normalized.
/// </summary>
public sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    public NormalizationForm Form { get; } = form;

    public override string Normalize(string text)
    {
        // Below U+0300 every character is stable under NFC and NFD and no combining mark follows; skip the check.
        if ((Form == NormalizationForm.FormC || Form == NormalizationForm.FormD)
            && text.AsSpan().IndexOfAnyExceptInRange('\0', '\u02FF') < 0)
            return text;
        if (!HasLoneSurrogate(text)) return text.Normalize(Form);
        var sb = new StringBuilder(text.Length);
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length
                && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            sb.Append(text.AsSpan(start, i - start).ToString().Normalize(Form)).Append(text[i]);
            start = i + 1;
        }
        sb.Append(text.AsSpan(start).ToString().Normalize(Form));
        return sb.ToString();
    }

    private static bool HasLoneSurrogate(string text)
    {
        for (int i = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF'); i >= 0 && i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            return true;
        }
        return false;
    }
}

/// <summary>Lower-cases the text (culture-invariant).</summary>
public sealed class LowercaseNormalizer : Normalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();
}

/// <summary>Applies its normalizers in order; an empty sequence leaves the text unchanged.</summary>
public sealed class SequenceNormalizer(IReadOnlyList<Normalizer> normalizers) : Normalizer
{
    public IReadOnlyList<Normalizer> Normalizers { get; } = normalizers;

    public override string Normalize(string text)
    {
        foreach (var n in Normalizers) text = n.Normalize(text);
        return text;
    }
}
