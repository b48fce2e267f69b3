// Source: HF transformers' from_pretrained(torch_dtype=...) semantics: weights kept in their stored dtype for
//         inference.
namespace NativeReasoner.Model;

/// <summary>The precision a loaded model holds its weights in.</summary>
public enum WeightPrecision
{
    /// <summary>Every parameter in float32: master weights for training (BF16/F16 widened, FP8 dequantised).</summary>
    Float32,

    /// <summary>
    /// Inference: matrices stay in the checkpoint's 16-bit type (BF16/F16; F32 stays F32) and FP8 matrices are
    /// dequantised once to BF16; products with them accumulate in fp32. Vectors (norms, biases) and the MoE router
    /// stay float32 (tiny, and routing is precision-sensitive). Every parameter is frozen.
    /// </summary>
    AsStored,
}

/// <summary>How a checkpoint's weights are held in memory after loading.</summary>
public sealed record CheckpointLoadOptions
{
    /// <summary>The weights' precision in memory.</summary>
    public WeightPrecision Precision { get; init; } = WeightPrecision.Float32;

    /// <summary>float32 master weights for every parameter: what training and fine-tuning need.</summary>
    public static CheckpointLoadOptions Training { get; } = new();

    /// <summary>Weights as the checkpoint stores them (no float32 copy of a 16-bit model), frozen.</summary>
    public static CheckpointLoadOptions Inference { get; } = new() { Precision = WeightPrecision.AsStored };
}

/// <summary>
/// What a checkpoint load did: notes on skipped or converted tensors, and the memory held afterwards.
/// </summary>
/// <param name="Notes">One line per decision a user should know of (a skipped multi-token-prediction layer, FP8
/// weights dequantised).</param>
/// <param name="WeightBytes">Bytes of the model's weights as held (elements × element size).</param>
/// <param name="ResidentBytes">The process's resident memory right after the load
/// (see <see cref="IO.ResidentMemory"/>).</param>
/// <param name="PeakResidentBytes">The process's peak resident memory up to the end of the load.</param>
public sealed record CheckpointLoadReport(IReadOnlyList<string> Notes, long WeightBytes, long ResidentBytes,
    long PeakResidentBytes);
