namespace NativeReasoner.IO;

/// <summary>
/// A safetensors file, shard index or checkpoint directory is malformed, inconsistent or lacks a
/// requested tensor. The message always names the file (and tensor, where one is involved) so a
/// bad checkpoint can be found without a debugger.
/// </summary>
public sealed class SafetensorsException : Exception
{
    /// <summary>The file (or directory, for checkpoint-level errors) the problem was found in.</summary>
    public string FilePath { get; }

    /// <summary>The tensor the problem concerns; null for file-level problems.</summary>
    public string? TensorName { get; }

    public SafetensorsException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : base(Format(filePath, tensorName, problem), inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    private static string Format(string filePath, string? tensorName, string problem) =>
        tensorName is null ? $"{filePath}: {problem}" : $"{filePath}: tensor '{tensorName}': {problem}";
}
