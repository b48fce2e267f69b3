using NativeReasoner.Kernels;

namespace NativeReasoner.IO;

/// <summary>
/// One tensor as described by a safetensors header, already validated against the file.
/// </summary>
/// <param name="Name">Tensor name as written in the header.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions; empty for a scalar. Do not mutate: the array is shared.</param>
/// <param name="DataOffset">Absolute byte offset of the first element within the file.</param>
/// <param name="ByteLength">Bytes of data (ElementCount × DType size).</param>
/// <param name="ElementCount">Product of the shape (1 for a scalar, 0 if any dimension is 0).</param>
public sealed record SafetensorsEntry(
    string Name,
    DType DType,
    long[] Shape,
    long DataOffset,
    long ByteLength,
    long ElementCount);

/// <summary>A tensor to be written: name, element type, shape and its raw little-endian bytes.</summary>
public sealed record SafetensorsTensor(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data);
