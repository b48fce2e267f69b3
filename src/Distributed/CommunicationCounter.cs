namespace NativeReasoner.Distributed;

/// <summary>
/// Bytes this rank sent to other ranks (rows that stay on this rank are not counted: they never leave the
/// process), split by what carried them, so a step's communication volume can be reported and modelled.
/// Not thread-safe: one counter per layer, updated by the thread that runs the layer's forward and backward.
/// </summary>
public sealed class CommunicationCounter
{
    /// <summary>Bytes of token rows sent by all-to-all (dispatch and combine, forward and backward).</summary>
    public long AllToAllBytes { get; private set; }

    /// <summary>Bytes of small bookkeeping collectives (the expert loads), as this rank's send volume.</summary>
    public long ControlBytes { get; private set; }

    public long TotalBytes => AllToAllBytes + ControlBytes;

    /// <summary>Adds rows counts[r] of <paramref name="rowBytes"/> each sent to every rank r ≠ <paramref
    /// name="self"/>.</summary>
    public void AddRows(int self, IReadOnlyList<int> counts, long rowBytes)
    {
        long rows = 0;
        for (int r = 0; r < counts.Count; r++)
            if (r != self) rows += counts[r];
        AllToAllBytes += rows * rowBytes;
    }

    public void AddControl(long bytes) => ControlBytes += bytes;

    public void Reset()
    {
        AllToAllBytes = 0;
        ControlBytes = 0;
    }
}
