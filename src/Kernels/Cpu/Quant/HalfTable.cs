// Source: ggml's ggml_table_f32_f16: every fp16 value widened once, so a block's scale is one load.
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Cpu.Quant;

/// <summary>fp16 bits → float32 for all 65,536 patterns (256 KiB, native memory allocated once per process).</summary>
internal static unsafe class HalfTable
{
    public static readonly float* Values = Build();

    private static float* Build()
    {
        var t = (float*)NativeMemory.AlignedAlloc(65536 * sizeof(float), 64);
        for (int i = 0; i < 65536; i++) t[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return t;
    }

    public static float Get(byte* at) => Values[*(ushort*)at];
}
