// Source: Hugging Face tokenizers' ByteLevel pre-tokenizer (tokenizers/src/pre_tokenizers/byte_level.rs),
// itself GPT-2's encoder.py: optional prefix space, optional split on GPT-2's regex, then bytes → characters.
namespace NativeReasoner.RL.Tokenizers;

/// <summary>
/// The ByteLevel pre-tokenizer: with <c>add_prefix_space</c> a space is put before a piece that does not start
/// with one; with <c>use_regex</c> the piece is split by GPT-2's pattern. The byte → character mapping itself
/// (<see cref="ByteLevelAlphabet"/>) happens when a piece is handed to the BPE model, so pieces stay UTF-16
/// text here and must be the last step of the pre-tokenizer.
/// </summary>
public sealed class ByteLevelPreTokenizer : PreTokenizer
{
    // GPT-2's pre-tokenization pattern (what ByteLevel uses when use_regex is true).
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly SplitPreTokenizer? _split;

    public bool AddPrefixSpace { get; }
    public bool UseRegex { get; }

    public ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex)
    {
        AddPrefixSpace = addPrefixSpace;
        UseRegex = useRegex;
        if (useRegex) _split = new SplitPreTokenizer(new CodePointRegex(Gpt2Pattern), SplitBehavior.Isolated,
            invert: false);
    }

    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        if (piece.Length == 0) return;
        if (AddPrefixSpace && piece.Span[0] != ' ')
        {
            var prefixed = " " + piece.ToString();
            piece = new TextPiece(prefixed, 0, prefixed.Length);
        }
        if (_split != null) _split.Split(piece, output);
        else output.Add(piece);
    }
}
