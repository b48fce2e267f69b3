namespace NativeReasoner.Serving;

/// <summary>
/// Streamed text cut at the first stop sequence: <see cref="Push"/> releases what can no longer become part of a
/// stop sequence (a tail that is a prefix of one is held back until the next piece decides it); once a stop
/// sequence appears, the text before it is released and everything after it is dropped.
/// </summary>
public sealed class StopSequenceFilter
{
    private readonly string[] _stops;
    private string _pending = "";

    public StopSequenceFilter(IEnumerable<string>? stopSequences)
    {
        _stops = (stopSequences ?? []).ToArray();
        foreach (var s in _stops)
            if (string.IsNullOrEmpty(s))
                throw new ArgumentException("a stop sequence must not be empty", nameof(stopSequences));
    }

    /// <summary>True once a stop sequence has been seen; later pieces are ignored.</summary>
    public bool Stopped { get; private set; }

    public string Push(string piece)
    {
        if (Stopped) return "";
        string text = _pending + piece;
        int cut = -1;
        foreach (var s in _stops)
        {
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _pending = "";
            return text[..cut];
        }
        int keep = HeldBack(text);
        _pending = text[(text.Length - keep)..];
        return text[..(text.Length - keep)];
    }

    /// <summary>The end of the output: releases the held-back tail.</summary>
    public string Finish()
    {
        var rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }

    /// <summary>The length of the longest tail of <paramref name="text"/> that starts some stop sequence.</summary>
    private int HeldBack(string text)
    {
        int best = 0;
        foreach (var s in _stops)
            for (int n = Math.Min(s.Length - 1, text.Length); n > best; n--)
                if (string.CompareOrdinal(text, text.Length - n, s, 0, n) == 0)
                {
                    best = n;
                    break;
                }
        return best;
    }
}
