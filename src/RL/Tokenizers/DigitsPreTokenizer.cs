// Source: Hugging Face tokenizers' Digits pre-tokenizer (tokenizers/src/pre_tokenizers/digits.rs).
namespace NativeReasoner.RL.Tokenizers;

/// <summary>
/// Isolates numbers: each run of numeric characters (Unicode category N) becomes a piece, or each single
/// digit when <c>individual_digits</c> is set; the text between them is kept as pieces too.
/// </summary>
public sealed class DigitsPreTokenizer(bool individualDigits) : PreTokenizer
{
    private readonly SplitPreTokenizer _split = new(
        new CodePointRegex(individualDigits ? @"\p{N}" : @"\p{N}+"), SplitBehavior.Isolated, invert: false);

    public bool IndividualDigits { get; } = individualDigits;

    public override void Split(TextPiece piece, List<TextPiece> output) => _split.Split(piece, output);
}
