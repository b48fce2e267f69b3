namespace NativeReasoner.Model;

/// <summary>How a checkpoint's weights are held in memory after loading.</summary>
public sealed record CheckpointLoadOptions
{
    /// <summary>float32 master weights for every parameter: what training and fine-tuning need.</summary>
    public static CheckpointLoadOptions Training { get; } = new();
}

/// <summary>What a checkpoint load did: notes on skipped or converted tensors, and the memory held afterwards.</summary>
/// <param name="Notes">One line per decision a user should know of (a skipped multi-token-prediction layer, FP8
/// weights dequantised).</param>
/// <param name="WeightBytes">Bytes of the model's weights as held (elements × element size).</param>
/// <param name="ResidentBytes">The process's resident memory right after the load (see <see cref="IO.ResidentMemory"/>).</param>
public sealed record CheckpointLoadReport(IReadOnlyList<string> Notes, long WeightBytes, long ResidentBytes);
