using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Tests.Gguf;

/// <summary>A tensor's values as float32, packed weights included (their stored blocks decoded row by row).
/// </summary>
internal static class PackedValues
{
    public static float[] Of(Tensor t)
    {
        if (t.PackedFormat is not { } format) return t.ToArray();
        var bytes = new byte[t.StorageBytes];
        t.CopyToHost(bytes);
        int n = t.Shape[0], k = t.Shape[1];
        long rowBytes = format.RowBytes(k);
        var values = new float[(long)n * k];
        for (int r = 0; r < n; r++)
            BlockQuantizer.DequantizeRow(format, bytes.AsSpan((int)(r * rowBytes), (int)rowBytes),
                values.AsSpan(r * k, k));
        return values;
    }
}
