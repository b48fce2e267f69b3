// Source: activation memory per token of a transformer training step (Korthikanti et al., arXiv:2205.05198, §4),
// taken here as a lower bound.
using NativeReasoner.Model;

namespace NativeReasoner.RL;

/// <summary>
/// Refuses a training batch that cannot fit before anything is allocated: a huge batch would otherwise run the
/// process into the kernel's OOM killer (Linux overcommits, so the allocation itself rarely fails) with no message.
/// The estimate is a lower bound, so a batch that would fit is never refused: per token, the logits, their
/// log-softmax and their gradient (3 × vocab floats), and per layer the residual stream kept for the backward pass
/// around attention and the MLP (4 × hidden floats).
/// </summary>
public static class TrainingMemory
{
    /// <summary>
    /// Bytes one training step of <paramref name="rows"/> × <paramref name="tokensPerRow"/> tokens needs at least.
    /// </summary>
    public static double StepLowerBoundBytes(ICausalLMConfig config, long rows, double tokensPerRow) =>
        rows * tokensPerRow * (3.0 * config.VocabSize + 4.0 * config.NumHiddenLayers * config.HiddenSize)
        * sizeof(float);

    /// <summary>The memory this process may use: physical memory, or the container's limit when lower.</summary>
    public static long AvailableBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming <paramref name="setting"/> when a step of
    /// <paramref name="rows"/> rows cannot fit in <paramref name="availableBytes"/>
    /// (default: <see cref="AvailableBytes"/>).
    /// </summary>
    public static void CheckBatchFits(string setting, int rows, ICausalLMConfig config, double tokensPerRow,
        long? availableBytes = null)
    {
        long available = availableBytes ?? AvailableBytes;
        double need = StepLowerBoundBytes(config, rows, tokensPerRow);
        if (need <= available) return;
        throw new ArgumentException(
            $"{setting} {rows} does not fit in memory: one training step needs at least {Gib(need)} for its " +
            $"activations ({rows} rows × ~{tokensPerRow:F0} tokens × (3 × vocab {config.VocabSize} + 4 × " +
            $"{config.NumHiddenLayers} layers × hidden {config.HiddenSize}) floats), and this machine has " +
            $"{Gib(available)}; lower {setting} to at most {MaxRows(config, tokensPerRow, available)}");
    }

    private static long MaxRows(ICausalLMConfig config, double tokensPerRow, long available) =>
        (long)Math.Max(1, Math.Floor(available / StepLowerBoundBytes(config, 1, tokensPerRow)));

    private static string Gib(double bytes) => $"{bytes / (1L << 30):F1} GiB";
}
