using NativeReasoner.Kernels.Quant;
using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Gguf;

/// <summary>A packed weight read back as float32 decodes its stored blocks (it once recursed without end).</summary>
public class PackedToArrayTests
{
    [Theory]
    [InlineData(QuantFormat.BF16)]
    [InlineData(QuantFormat.Q8_0)]
    [InlineData(QuantFormat.Q4_0)]
    [InlineData(QuantFormat.Q4_K)]
    public void ToArray_of_a_packed_weight_equals_its_decoded_blocks(QuantFormat format)
    {
        var rng = new Generator(3);
        using var w = new Parameter(Tensor.Randn([5, 256], rng));
        var before = w.ToArray();
        w.StoreAsPacked(format);
        var decoded = PackedValues.Of(w);
        var read = w.ToArray();
        Assert.Equal(decoded, read);
        // The decoded values are the originals to the format's rounding, not garbage.
        double err = before.Zip(read, (a, b) => Math.Abs(a - b)).Max();
        Assert.InRange(err, 0, 0.5);
    }
}
