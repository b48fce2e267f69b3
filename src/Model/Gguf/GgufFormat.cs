// Source: ggml's GGUF specification (ggml/docs/gguf.md: file structure, alignment, version 3).
namespace NativeReasoner.Model.Gguf;

/// <summary>Constants of the GGUF container and the limits this reader enforces on untrusted files.</summary>
public static class GgufFormat
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>The version written; version 2 has the same little-endian layout and is read too.</summary>
    public const uint Version = 3;

    public const string AlignmentKey = "general.alignment";
    public const string ArchitectureKey = "general.architecture";
    public const uint DefaultAlignment = 32;

    /// <summary>ggml's GGML_MAX_DIMS.</summary>
    public const int MaxDimensions = 4;

    /// <summary>Longest string accepted (a chat template or a token is far shorter; a bigger one is
    /// corruption).</summary>
    public const long MaxStringBytes = 64L << 20;

    /// <summary>Arrays inside arrays deeper than this are rejected.</summary>
    public const int MaxArrayNesting = 4;

    /// <summary>Elements per tensor dimension and per tensor; larger counts are corruption, not a model.</summary>
    public const long MaxElements = 1L << 50;

    public static long AlignUp(long offset, long alignment) => (offset + alignment - 1) / alignment * alignment;
}
