// Source: HF transformers' PretrainedConfig validation errors.
namespace NativeReasoner.Model;

/// <summary>
/// A model configuration that cannot describe a working model (inconsistent sizes, an unknown scoring
/// function or RoPE type, a malformed config.json). The message names the field(s) and the values.
/// </summary>
public sealed class ModelConfigException : Exception
{
    public ModelConfigException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A checkpoint that does not fit the model: a missing or unexpected tensor, or a tensor of the wrong
/// shape. The message names the tensor and, for shapes, both the expected and the stored one.
/// </summary>
public sealed class CheckpointMismatchException : Exception
{
    public CheckpointMismatchException(string message) : base(message) { }
}
