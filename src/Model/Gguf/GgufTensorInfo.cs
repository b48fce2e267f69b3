// Source: ggml's GGUF specification (ggml/docs/gguf.md, "gguf_tensor_info_t").
namespace NativeReasoner.Model.Gguf;

/// <summary>
/// One tensor of a GGUF file. <see cref="Dimensions"/> are ggml's ne order (ne[0] = the contiguous, innermost
/// dimension); <see cref="Shape"/> is the same in row-major order (outermost first), which is how the engine and
/// PyTorch name shapes: a Linear weight [out, in] is stored with ne = [in, out]. <see cref="Offset"/> is relative to
/// the
/// start of the data section; <see cref="DataOffset"/> is absolute in the file.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, long Offset, long DataOffset,
    long ByteLength)
{
    public long[] Shape
    {
        get
        {
            var s = new long[Dimensions.Length];
            for (int i = 0; i < s.Length; i++) s[i] = Dimensions[s.Length - 1 - i];
            return s;
        }
    }

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Dimensions) n *= d;
            return n;
        }
    }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
