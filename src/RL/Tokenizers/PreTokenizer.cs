// Source: Hugging Face tokenizers' pre-tokenizer contract (tokenizers/src/tokenizer/pre_tokenizer.rs): a
// pre-tokenizer cuts the normalized text into pieces; BPE never merges across two pieces.
namespace NativeReasoner.RL.Tokenizers;

/// <summary>A piece of text: <c>Source[Start .. Start + Length)</c>. Pieces share their source string.</summary>
public readonly record struct TextPiece(string Source, int Start, int Length)
{
    public ReadOnlySpan<char> Span => Source.AsSpan(Start, Length);

    public override string ToString() => Source.Substring(Start, Length);
}

/// <summary>A tokenizer.json pre-tokenizer: splits one piece into smaller ones, in order.</summary>
public abstract class PreTokenizer
{
    /// <summary>Appends the pieces <paramref name="piece"/> splits into (none for an empty piece).</summary>
    public abstract void Split(TextPiece piece, List<TextPiece> output);

    /// <summary>Splits every piece of <paramref name="pieces"/> in place; <paramref name="scratch"/> is
    /// reused.</summary>
    public virtual void SplitAll(List<TextPiece> pieces, List<TextPiece> scratch)
    {
        scratch.Clear();
        foreach (var p in pieces) Split(p, scratch);
        pieces.Clear();
        pieces.AddRange(scratch);
    }
}

/// <summary>Applies its pre-tokenizers one after the other, each to every piece the previous one produced.</summary>
public sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> preTokenizers) : PreTokenizer
{
    public IReadOnlyList<PreTokenizer> PreTokenizers { get; } = preTokenizers;

    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        var pieces = new List<TextPiece> { piece };
        SplitAll(pieces, new List<TextPiece>());
        output.AddRange(pieces);
    }

    public override void SplitAll(List<TextPiece> pieces, List<TextPiece> scratch)
    {
        foreach (var p in PreTokenizers) p.SplitAll(pieces, scratch);
    }
}
