// Source: Hugging Face tokenizers' Split pre-tokenizer and SplitDelimiterBehavior
// (tokenizers/src/pre_tokenizers/split.rs, tokenizers/src/tokenizer/normalizer.rs).
namespace NativeReasoner.RL.Tokenizers;

/// <summary>What a split does with the text its pattern matches (tokenizer.json's <c>behavior</c>).</summary>
public enum SplitBehavior
{
    /// <summary>Matches are dropped; the text between them is kept.</summary>
    Removed,
    /// <summary>Each match is a piece of its own.</summary>
    Isolated,
    /// <summary>Each match ends the piece before it.</summary>
    MergedWithPrevious,
    /// <summary>Each match starts the piece after it.</summary>
    MergedWithNext,
    /// <summary>Consecutive matches form one piece.</summary>
    Contiguous,
}

/// <summary>
/// Splits on a regex (evaluated by code point, see <see cref="CodePointRegex"/>) or a literal string. With
/// <c>invert</c>, the pattern describes the pieces to keep instead of the delimiters.
/// </summary>
public sealed class SplitPreTokenizer : PreTokenizer
{
    private readonly CodePointRegex _regex;

    [ThreadStatic] private static List<(int Start, int Length)>? t_matches;

    public SplitBehavior Behavior { get; }
    public bool Invert { get; }

    public SplitPreTokenizer(CodePointRegex regex, SplitBehavior behavior, bool invert)
    {
        _regex = regex;
        Behavior = behavior;
        Invert = invert;
    }

    public override void Split(TextPiece piece, List<TextPiece> output)
    {
        if (piece.Length == 0) return;
        var matches = t_matches ??= new List<(int, int)>();
        matches.Clear();
        _regex.Matches(piece.Span, matches);
        // Walk the piece as alternating gap / match segments; `isMatch` is whether a segment is a delimiter.
        int pendingStart = -1; // start of a piece still being built (MergedWithNext, Contiguous)
        int pos = 0;
        for (int k = 0; k <= matches.Count; k++)
        {
            int mStart = k < matches.Count ? matches[k].Start : piece.Length;
            int mLength = k < matches.Count ? matches[k].Length : 0;
            if (mStart > pos) Segment(piece, pos, mStart - pos, Invert, output, ref pendingStart);
            if (mLength > 0) Segment(piece, mStart, mLength, !Invert, output, ref pendingStart);
            pos = mStart + mLength;
        }
        if (pendingStart >= 0) output.Add(piece with
        {
            Start = piece.Start + pendingStart,
            Length = piece.Length - pendingStart
        });
    }

    private void Segment(TextPiece piece, int start, int length, bool isDelimiter, List<TextPiece> output,
        ref int pendingStart)
    {
        TextPiece Slice(int s, int l) => piece with { Start = piece.Start + s, Length = l };
        switch (Behavior)
        {
            case SplitBehavior.Removed:
                if (!isDelimiter) output.Add(Slice(start, length));
                break;
            case SplitBehavior.Isolated:
                output.Add(Slice(start, length));
                break;
            case SplitBehavior.MergedWithPrevious:
                // a delimiter closes the piece that started at the last gap (or itself when there is none)
                if (pendingStart < 0) pendingStart = start;
                if (isDelimiter) { output.Add(Slice(pendingStart, start + length - pendingStart)); pendingStart = -1; }
                break;
            case SplitBehavior.MergedWithNext:
                // a delimiter opens a new piece; a gap extends the open one
                if (isDelimiter && pendingStart >= 0) output.Add(Slice(pendingStart, start - pendingStart));
                if (isDelimiter || pendingStart < 0) pendingStart = start;
                break;
            case SplitBehavior.Contiguous:
                // runs of delimiters stay together; each gap is a piece
                if (isDelimiter) { if (pendingStart < 0) pendingStart = start; }
                else
                {
                    if (pendingStart >= 0) { output.Add(Slice(pendingStart, start - pendingStart)); pendingStart = -1; }
                    output.Add(Slice(start, length));
                }
                break;
        }
    }
}
