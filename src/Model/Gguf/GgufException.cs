namespace NativeReasoner.Model.Gguf;

/// <summary>
/// A GGUF file is missing, malformed, inconsistent, or holds something this engine cannot use. The message names the
/// file and the field (header field, metadata key or tensor) the problem was found in, and what was expected.
/// </summary>
public sealed class GgufException : Exception
{
    /// <summary>The file the problem was found in.</summary>
    public string FilePath { get; }

    /// <summary>The field, metadata key or tensor the problem concerns.</summary>
    public string Field { get; }

    public GgufException(string filePath, string field, string problem, Exception? inner = null)
        : base($"{filePath}: {field}: {problem}", inner)
    {
        FilePath = filePath;
        Field = field;
    }
}
