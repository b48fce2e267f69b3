// Source: ggml's ggml_vec_dot_q8_0_q8_0, ggml_vec_dot_q4_0_q8_0 and ggml_vec_dot_q4_K_q8_K
//         (ggml-cpu/arch/x86/quants.c): integer dot products per block, scaled and summed in float.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Cpu.Quant;

/// <summary>
/// One packed weight row · one row of <see cref="Q8Activations"/>. Per 32-weight block the integer dot Σ q_w·q_a
/// is exact (int32); it is scaled by the block's two scales and summed in float. The 4-bit formats store
/// unsigned levels: Σ (q − 8)·a = Σ q·a − 8·Σa and Σ (d·s·q − m)·a = d·s·Σ q·a − m·Σa, so their levels go
/// straight into the unsigned operand of vpmaddubsw / vpdpbusd and the offsets use the activation block sums.
/// Q8_0's weights are signed: |w| goes into the unsigned operand and the activations take w's sign (ggml's trick).
/// The loops are compiled optimised from their first call (AggressiveOptimization), as the SGEMM's are: tiered
/// compilation first runs them unoptimised, and on a loaded machine the promotion can take many seconds — a
/// packed bench-tiny decode ran 10× slower than with tiering off until it came.
/// </summary>
internal static unsafe class QuantDots
{
    /// <summary>
    /// <see cref="HalfTable"/> initialised before any kernel here is compiled. A kernel compiled while the table's
    /// static field is not yet initialised keeps an initialisation check on its loads of the table (and, being
    /// compiled optimised from the start, it is never recompiled): whichever kernel a process called first ran
    /// 2–2.5× slower than the others for the whole run (Q8_0 at batch 1: 13 against 31 GB/s on one thread).
    /// </summary>
    static QuantDots() => RuntimeHelpers.RunClassConstructor(typeof(HalfTable).TypeHandle);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(QuantIsa isa, QuantFormat format, byte* w, in Q8Activations a, int row)
    {
        sbyte* q = a.Q + (long)row * a.BlocksPerRow * Q8Activations.Block;
        float* s = a.Scale + (long)row * a.BlocksPerRow;
        int* sum = a.Sum + (long)row * a.BlocksPerRow;
        int nb = a.BlocksPerRow;
        return format switch
        {
            QuantFormat.Q8_0 => isa switch
            {
                QuantIsa.Avx512 => Q8_0Avx512(w, q, s, nb),
                QuantIsa.AvxVnni => BlockAvx2<Q8_0Avx2Block>(w, q, s, sum, nb, vnni: true),
                QuantIsa.Avx2 => BlockAvx2<Q8_0Avx2Block>(w, q, s, sum, nb, vnni: false),
                _ => Q8_0Scalar(w, q, s, nb),
            },
            QuantFormat.Q4_0 => isa switch
            {
                QuantIsa.Avx512 => Q4_0Avx512(w, q, s, sum, nb),
                QuantIsa.AvxVnni => BlockAvx2<Q4_0Avx2Block>(w, q, s, sum, nb, vnni: true),
                QuantIsa.Avx2 => BlockAvx2<Q4_0Avx2Block>(w, q, s, sum, nb, vnni: false),
                _ => Q4_0Scalar(w, q, s, sum, nb),
            },
            QuantFormat.Q4_K => isa switch
            {
                QuantIsa.Avx512 => Q4_KAvx512(w, q, s, sum, nb),
                QuantIsa.AvxVnni => Q4_KAvx2(w, q, s, sum, nb, vnni: true),
                QuantIsa.Avx2 => Q4_KAvx2(w, q, s, sum, nb, vnni: false),
                _ => Q4_KScalar(w, q, s, sum, nb),
            },
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "no integer dot for this format"),
        };
    }

    // ------------------------------------------------------------------ scalar

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Dot32(byte* levels, sbyte* q)
    {
        int acc = 0;
        for (int j = 0; j < 32; j++) acc += levels[j] * q[j];
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q8_0Scalar(byte* w, sbyte* q, float* s, int nb)
    {
        float total = 0f;
        for (int b = 0; b < nb; b++, w += Q8_0Block.Bytes, q += 32)
        {
            sbyte* wq = (sbyte*)(w + 2);
            int acc = 0;
            for (int j = 0; j < 32; j++) acc += wq[j] * q[j];
            total += acc * (HalfTable.Get(w) * s[b]);
        }
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_0Scalar(byte* w, sbyte* q, float* s, int* sum, int nb)
    {
        float total = 0f;
        byte* levels = stackalloc byte[32];
        for (int b = 0; b < nb; b++, w += Q4_0Block.Bytes, q += 32)
        {
            for (int j = 0; j < 16; j++)
            {
                levels[j] = (byte)(w[2 + j] & 0xF);
                levels[j + 16] = (byte)(w[2 + j] >> 4);
            }
            total += (Dot32(levels, q) - 8 * sum[b]) * (HalfTable.Get(w) * s[b]);
        }
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_KScalar(byte* w, sbyte* q, float* s, int* sum, int nb)
    {
        float total = 0f;
        byte* levels = stackalloc byte[32];
        for (int sb = 0; sb < nb / 8; sb++, w += Q4_KBlock.Bytes)
        {
            float d = HalfTable.Get(w), dmin = HalfTable.Get(w + 2);
            var scales = new ReadOnlySpan<byte>(w + 4, 12);
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = Q4_KBlock.ScaleMin(scales, j);
                byte* qs = w + 16 + 32 * (j / 2);
                int shift = 4 * (j % 2);
                for (int l = 0; l < 32; l++) levels[l] = (byte)((qs[l] >> shift) & 0xF);
                int blk = sb * 8 + j;
                total += d * sc * s[blk] * Dot32(levels, q + 32 * blk) - dmin * m * s[blk] * sum[blk];
            }
        }
        return total;
    }

    // ------------------------------------------------------------------ AVX2 / AVX-VNNI: one block per vector

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotU8S8(Vector256<byte> u, Vector256<sbyte> v, bool vnni)
    {
        if (vnni && AvxVnni.IsSupported) return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, v);
        // |u·v| ≤ 255·127·2 would overflow the 16-bit pair sums, but u is at most 128 here (|q8| or a nibble).
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, v), Vector256.Create((short)1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Nibbles(byte* at)
    {
        var raw = Vector128.Load(at);
        var mask = Vector128.Create((byte)0x0F);
        return Vector256.Create(raw & mask, Vector128.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & mask);
    }

    /// <summary>
    /// What differs between the Q8_0 and Q4_0 blocks in <see cref="BlockAvx2{T}"/>: the block size, how a block's
    /// 32 weights become the unsigned and signed operands of the integer dot, and the level offset to take back
    /// (Q4_0 stores q + 8).
    /// </summary>
    private interface IAvx2Block
    {
        static abstract int Bytes { get; }
        static abstract int LevelOffset { get; }
        static abstract (Vector256<byte> Unsigned, Vector256<sbyte> Signed) Operands(byte* block, Vector256<sbyte> a);
    }

    /// <summary>Q8_0's signed weights: |w| unsigned, the activations carrying w's sign.</summary>
    private struct Q8_0Avx2Block : IAvx2Block
    {
        public static int Bytes => Q8_0Block.Bytes;
        public static int LevelOffset => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector256<byte>, Vector256<sbyte>) Operands(byte* block, Vector256<sbyte> a)
        {
            var wq = Vector256.Load((sbyte*)(block + 2));
            return (Avx2.Abs(wq), Avx2.Sign(a, wq));
        }
    }

    /// <summary>Q4_0's nibbles as they are (unsigned levels 0…15), the activations as they are.</summary>
    private struct Q4_0Avx2Block : IAvx2Block
    {
        public static int Bytes => Q4_0Block.Bytes;
        public static int LevelOffset => 8;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector256<byte>, Vector256<sbyte>) Operands(byte* block, Vector256<sbyte> a) =>
            (Nibbles(block + 2), a);
    }

    /// <summary>
    /// The block loop Q8_0 and Q4_0 share (an fp16 scale, then 32 levels): per block the integer dot of its
    /// operands, scaled by both scales into a float accumulator; the level offset comes off once at the end
    /// through the activation block sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float BlockAvx2<T>(byte* w, sbyte* q, float* s, int* sum, int nb, bool vnni)
        where T : struct, IAvx2Block
    {
        var acc = Vector256<float>.Zero;
        float offsets = 0f;
        for (int b = 0; b < nb; b++, w += T.Bytes, q += 32)
        {
            float scale = HalfTable.Get(w) * s[b];
            var (unsigned, signed) = T.Operands(w, Vector256.Load(q));
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(DotU8S8(unsigned, signed, vnni)),
                Vector256.Create(scale), acc);
            if (T.LevelOffset != 0) offsets += T.LevelOffset * sum[b] * scale;
        }
        return Vector256.Sum(acc) - offsets;
    }

    /// <summary>
    /// The eight 6-bit scales and the eight 6-bit mins of a Q4_K super-block (its 12 packed bytes at
    /// <paramref name="packed"/>), one per byte, sub-block 0 in the lowest: twelve 32-bit operations on the packing
    /// <see cref="Q4_KBlock.ScaleMin"/> reads a field at a time. For j &lt; 4 both are the low 6 bits of their byte;
    /// for j ≥ 4 the low 4 bits come from a nibble of bytes 8–11 and the top 2 from bits 6–7 of bytes 0–7.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (ulong Scales, ulong Mins) Q4_KScalesMins(byte* packed)
    {
        uint b0 = Unsafe.ReadUnaligned<uint>(packed), b4 = Unsafe.ReadUnaligned<uint>(packed + 4);
        uint b8 = Unsafe.ReadUnaligned<uint>(packed + 8);
        uint scalesHigh = (b8 & 0x0F0F0F0Fu) | (((b0 >> 6) & 0x03030303u) << 4);
        uint minsHigh = ((b8 >> 4) & 0x0F0F0F0Fu) | (((b4 >> 6) & 0x03030303u) << 4);
        return ((b0 & 0x3F3F3F3Fu) | ((ulong)scalesHigh << 32), (b4 & 0x3F3F3F3Fu) | ((ulong)minsHigh << 32));
    }

    /// <summary>Eight bytes (as from <see cref="Q4_KScalesMins"/>) → eight floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BytesToFloats(ulong eight) =>
        Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.CreateScalar(eight).AsByte()));

    /// <summary>
    /// Per super-block: the scales and mins unpacked once into float vectors, the eight sub-block scales
    /// d·scale_j·s_j formed in one vector multiply, and the min terms dmin·min_j·s_j·Σq_j accumulated in a vector
    /// (one horizontal sum per row, not one scalar chain per sub-block). Each sub-block's integer dot is converted
    /// and scaled on its own (the activations carry one scale per 32, see <see cref="Q8Activations"/>), its scale
    /// broadcast from the vector by vpermps; two accumulators halve the FMA dependency chain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_KAvx2(byte* w, sbyte* q, float* s, int* sum, int nb, bool vnni)
    {
        Vector256<float> acc0 = default, acc1 = default, minTerms = default;
        var mask = Vector256.Create((byte)0x0F);
        for (int sb = 0; sb < nb / 8; sb++, w += Q4_KBlock.Bytes, q += Q4_KBlock.Size, s += 8, sum += 8)
        {
            var (scales, mins) = Q4_KScalesMins(w + 4);
            var activationScale = Vector256.Load(s); // [8]: s_j
            var scale = BytesToFloats(scales) * (activationScale * HalfTable.Get(w)); // [8]: d·scale_j·s_j
            minTerms = Fma.MultiplyAdd(BytesToFloats(mins) * HalfTable.Get(w + 2),
                activationScale * Avx.ConvertToVector256Single(Vector256.Load(sum)), minTerms);
            for (int c = 0; c < 4; c++)
            {
                // Chunk c: sub-block 2c in the low nibbles, 2c + 1 in the high, against activation blocks 2c, 2c + 1.
                var raw = Vector256.Load(w + 16 + 32 * c);
                var lo = raw & mask;
                var hi = Vector256.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & mask;
                var dot0 = DotU8S8(lo, Vector256.Load(q + 64 * c), vnni);
                var dot1 = DotU8S8(hi, Vector256.Load(q + 64 * c + 32), vnni);
                acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot0),
                    Avx2.PermuteVar8x32(scale, Vector256.Create(2 * c)), acc0);
                acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot1),
                    Avx2.PermuteVar8x32(scale, Vector256.Create(2 * c + 1)), acc1);
            }
        }
        return Vector256.Sum(acc0 + acc1) - Vector256.Sum(minTerms);
    }

    // ------------------------------------------------------------------ AVX-512: two blocks per vector

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> DotU8S8x2(Vector512<byte> u, Vector512<sbyte> v) =>
        Avx512F.ConvertToVector512Single(
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, v), Vector512.Create((short)1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scales2(float s0, float s1) =>
        Vector512.Create(Vector256.Create(s0), Vector256.Create(s1));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q8_0Avx512(byte* w, sbyte* q, float* s, int nb)
    {
        var acc = Vector512<float>.Zero;
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * Q8_0Block.Bytes, q += 64)
        {
            var wq = Vector512.Create(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(w + Q8_0Block.Bytes
                + 2)));
            var a = Vector512.Load(q);
            // No 512-bit vpsignb: negate the activations where the weight is negative (|w| = 0 makes the rest moot).
            var signed = Vector512.ConditionalSelect(Vector512.LessThan(wq, Vector512<sbyte>.Zero), -a, a);
            var dot = DotU8S8x2(Vector512.Abs(wq).AsByte(), signed);
            acc = Avx512F.FusedMultiplyAdd(dot,
                Scales2(HalfTable.Get(w) * s[b], HalfTable.Get(w + Q8_0Block.Bytes) * s[b + 1]), acc);
        }
        float total = Vector512.Sum(acc);
        if (b < nb) total += Q8_0Scalar(w, q, s + b, nb - b);
        return total;
    }

    /// <summary>
    /// Two Q4_0 blocks per 512-bit vector. Each block's 16 bytes go to two 128-bit lanes and vpsrlvw shifts the
    /// second by 4, so one mask leaves [low nibbles, high nibbles] = the block's 32 levels in order. The level
    /// offset comes off in the 16-bit pair sums (Σ q·a − Σ 8·a, two vpmaddubsw: |sums| ≤ 2·15·127, no saturation),
    /// not in a scalar chain per block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_0Avx512(byte* w, sbyte* q, float* s, int* sum, int nb)
    {
        var acc = Vector512<float>.Zero;
        var mask = Vector512.Create((byte)0x0F);
        var eights = Vector512.Create((byte)8);
        var nibbleShift = Vector512.Create(Vector256.Create(Vector128<ushort>.Zero, Vector128.Create((ushort)4)),
            Vector256.Create(Vector128<ushort>.Zero, Vector128.Create((ushort)4)));
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * Q4_0Block.Bytes, q += 64)
        {
            var raw0 = Vector128.Load(w + 2);
            var raw1 = Vector128.Load(w + Q4_0Block.Bytes + 2);
            var raw = Vector512.Create(Vector256.Create(raw0, raw0), Vector256.Create(raw1, raw1));
            var levels = Avx512BW.ShiftRightLogicalVariable(raw.AsUInt16(), nibbleShift).AsByte() & mask;
            var a = Vector512.Load(q);
            var pairs = Avx512BW.MultiplyAddAdjacent(levels, a) - Avx512BW.MultiplyAddAdjacent(eights, a);
            var dot = Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1)));
            acc = Avx512F.FusedMultiplyAdd(dot,
                Scales2(HalfTable.Get(w) * s[b], HalfTable.Get(w + Q4_0Block.Bytes) * s[b + 1]), acc);
        }
        float total = Vector512.Sum(acc);
        if (b < nb) total += Q4_0Scalar(w, q, s + b, sum + b, nb - b);
        return total;
    }

    /// <summary>
    /// <see cref="Q4_KAvx2"/>'s scheme with both sub-blocks of a 32-byte chunk in one 512-bit vector: the chunk is
    /// broadcast to both halves and vpsrlvw shifts only the upper half by 4, so one mask leaves the low nibbles
    /// (sub-block 2c) below and the high nibbles (2c + 1) above, in the order of the 64 activations.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_KAvx512(byte* w, sbyte* q, float* s, int* sum, int nb)
    {
        Vector512<float> acc0 = default, acc1 = default;
        var minTerms = Vector256<float>.Zero;
        var mask = Vector512.Create((byte)0x0F);
        var nibbleShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
        // vpermps indices: sub-block 2c's scale into lanes 0–7, 2c + 1's into lanes 8–15.
        var pair0 = Vector512.Create(Vector256.Create(0), Vector256.Create(1));
        var pair1 = Vector512.Create(Vector256.Create(2), Vector256.Create(3));
        var pair2 = Vector512.Create(Vector256.Create(4), Vector256.Create(5));
        var pair3 = Vector512.Create(Vector256.Create(6), Vector256.Create(7));
        for (int sb = 0; sb < nb / 8; sb++, w += Q4_KBlock.Bytes, q += Q4_KBlock.Size, s += 8, sum += 8)
        {
            var (scales, mins) = Q4_KScalesMins(w + 4);
            var activationScale = Vector256.Load(s); // [8]: s_j
            var scale = (BytesToFloats(scales) * (activationScale * HalfTable.Get(w))).ToVector512Unsafe();
            minTerms = Fma.MultiplyAdd(BytesToFloats(mins) * HalfTable.Get(w + 2),
                activationScale * Avx.ConvertToVector256Single(Vector256.Load(sum)), minTerms);
            acc0 = Avx512F.FusedMultiplyAdd(Q4_KChunk(w + 16, q, mask, nibbleShift),
                Avx512F.PermuteVar16x32(scale, pair0), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Q4_KChunk(w + 48, q + 64, mask, nibbleShift),
                Avx512F.PermuteVar16x32(scale, pair1), acc1);
            acc0 = Avx512F.FusedMultiplyAdd(Q4_KChunk(w + 80, q + 128, mask, nibbleShift),
                Avx512F.PermuteVar16x32(scale, pair2), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Q4_KChunk(w + 112, q + 192, mask, nibbleShift),
                Avx512F.PermuteVar16x32(scale, pair3), acc1);
        }
        return Vector512.Sum(acc0 + acc1) - Vector256.Sum(minTerms);
    }

    /// <summary>32 bytes of Q4_K nibbles · 64 activations: both sub-blocks' integer dots, 8 float lanes each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Q4_KChunk(byte* nibbles, sbyte* a, Vector512<byte> mask,
        Vector512<ushort> nibbleShift)
    {
        // Not Avx512F.BroadcastVector256ToVector512((ulong*)…): inlined into this loop, .NET 10 produced wrong
        // levels with it (the scalar comparison caught it; alone it was right). Create(raw, raw) is one vinserti.
        var raw = Vector256.Load(nibbles);
        var both = Vector512.Create(raw, raw).AsUInt16();
        var levels = Avx512BW.ShiftRightLogicalVariable(both, nibbleShift).AsByte() & mask;
        return DotU8S8x2(levels, Vector512.Load(a));
    }
}
