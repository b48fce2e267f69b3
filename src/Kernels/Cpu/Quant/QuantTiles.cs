// Source: llamafile's tinyBLAS_Q0_AVX (llamafile/tinyblas_cpu.h, as ggml's llamafile_sgemm runs it): RM×RN tiles
//         of 32-weight block dots, each block's int32 sums scaled by the two block scales into fp32 accumulators;
//         the Q4_K blocks as ggml_vec_dot_q4_K_q8_K reads them (ggml-cpu/arch/x86/quants.c).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Cpu.Quant;

/// <summary>
/// Packed weights × several rows of <see cref="Q8Activations"/> by tiles of <see cref="WeightRows"/> weight rows ×
/// up to <see cref="XRows"/> x rows: y[m, n] = Σ_blocks d_w(n, b) · d_a(m, b) · (q_w(n, b) · q_a(m, b)), minus the
/// 4-bit formats' level offsets. Each weight block is loaded and unpacked once per tile and each activation block
/// once per tile, where <see cref="QuantDots"/> loads both for every (weight row, x row) pair; each pair then costs
/// one integer dot (vpdpbusd, or vpmaddubsw + vpmaddwd), a conversion and a multiply-add, and the horizontal sums
/// come once per pair at the end of the row instead of per block.
/// The 4-bit formats' offsets ride along: Q4_0 starts each block's integer sum at −8·Σq_a; Q4_K's mins (scaled
/// by dmin, not by d) are subtracted from the float accumulator, eight sub-blocks per multiply-add. Q8_0 takes
/// |q_w| unsigned and gives q_a its sign (vpsignb per pair).
/// Every path is 256-bit: .NET offers no 512-bit vpdpbusd without AVX10, and on the AMD EPYC this was tuned on
/// the per-row AVX-512BW dots (two blocks per vpmaddubsw + vpmaddwd) ran about 2× slower than the 256-bit VNNI
/// ones at batch 1, so no 512-bit tile was written; the Avx512 path runs the fastest 256-bit tiles.
/// </summary>
internal static unsafe class QuantTiles
{
    /// <summary><see cref="HalfTable"/> initialised before any tile kernel is compiled (see QuantDots: a kernel compiled
    /// optimised before the table's static field is set keeps an initialisation check on every scale load).</summary>
    static QuantTiles() => RuntimeHelpers.RunClassConstructor(typeof(HalfTable).TypeHandle);

    /// <summary>Weight rows per tile: a tile's rows are the unit the threads share.</summary>
    public const int WeightRows = 4;

    /// <summary>x rows per tile: 4 × 4 accumulators plus the operands fill the 32 vector registers of AVX-512
    /// machines (16 on AVX2-only ones, where some spill).</summary>
    public const int XRows = 4;

    /// <summary>Q8_0, Q4_0 and Q4_K on this path (the formats with integer dots).</summary>
    public static bool Handles(QuantFormat format) =>
        format is QuantFormat.Q8_0 or QuantFormat.Q4_0 or QuantFormat.Q4_K;

    /// <summary>Floats of scratch <see cref="Run"/> needs for rows of k weights (Q4_K's decoded scales and mins
    /// of one tile of weight rows).</summary>
    public static long ScratchFloats(QuantFormat format, int k) =>
        format == QuantFormat.Q4_K ? (long)k / 256 * 2 * 8 * WeightRows : 0;

    /// <summary>
    /// y[m, n] for all M rows of <paramref name="a"/> and the weight rows [n0, n1) of w (rows of rowBytes);
    /// y: [M, ldy]; scratch: <see cref="ScratchFloats"/>. Scalar takes <see cref="QuantDots"/>' scalar dot per pair.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(QuantIsa isa, QuantFormat format, byte* w, long rowBytes, in Q8Activations a, int M,
        long n0, long n1, float* y, long ldy, float* scratch)
    {
        if (isa == QuantIsa.Scalar)
        {
            for (long n = n0; n < n1; n++)
                for (int m = 0; m < M; m++)
                    y[m * ldy + n] = QuantDots.Dot(QuantIsa.Scalar, format, w + n * rowBytes, a, m);
            return;
        }
        // Avx512 runs the fastest 256-bit tiles (see the class comment): VNNI's where this CPU has it, but for
        // Q8_0 AVX2's (see Q8_0Vnni).
        bool vnni = isa == QuantIsa.AvxVnni
            || isa == QuantIsa.Avx512 && format != QuantFormat.Q8_0 && QuantIsas.Supported(QuantIsa.AvxVnni);
        for (long n = n0; n < n1; n += WeightRows)
        {
            int rows = (int)Math.Min(WeightRows, n1 - n);
            // A short tile repeats its last row rather than branching in the block loop; only real rows are stored.
            byte* w0 = w + n * rowBytes;
            byte* w1 = w + (n + Math.Min(1, rows - 1)) * rowBytes;
            byte* w2 = w + (n + Math.Min(2, rows - 1)) * rowBytes;
            byte* w3 = w + (n + Math.Min(3, rows - 1)) * rowBytes;
            // Q4_K: the tile's 6-bit scales and mins decoded once for all x rows.
            if (format == QuantFormat.Q4_K) DecodeQ4_K(w0, w1, w2, w3, a.BlocksPerRow / 8, scratch);
            for (int m = 0; m < M; m += XRows)
            {
                var t = new Tile
                {
                    W0 = w0, W1 = w1, W2 = w2, W3 = w3, WeightRows = rows,
                    Q = a.Q + (long)m * a.BlocksPerRow * Q8Activations.Block,
                    Scale = a.Scale + (long)m * a.BlocksPerRow, Sum = a.Sum + (long)m * a.BlocksPerRow,
                    Blocks = a.BlocksPerRow, Y = y + m * ldy + n, Ldy = ldy, Decoded = scratch,
                };
                int xRows = Math.Min(XRows, M - m);
                switch (xRows)
                {
                    case 1: RunTile<X1>(format, vnni, ref t); break;
                    case 2: RunTile<X2>(format, vnni, ref t); break;
                    case 3: RunTile<X3>(format, vnni, ref t); break;
                    default: RunTile<X4>(format, vnni, ref t); break;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RunTile<TX>(QuantFormat format, bool vnni, ref Tile t) where TX : struct, IXRows
    {
        switch (format)
        {
            case QuantFormat.Q8_0:
                if (vnni) Blocks32<Q8_0Vnni, TX>(ref t);
                else Blocks32<Q8_0Avx2, TX>(ref t);
                break;
            case QuantFormat.Q4_0:
                if (vnni) Blocks32<Q4_0Kind<Vnni>, TX>(ref t);
                else Blocks32<Q4_0Kind<Avx2Dot>, TX>(ref t);
                break;
            case QuantFormat.Q4_K:
                if (vnni) Q4_KBlocks<Vnni, TX>(ref t);
                else Q4_KBlocks<Avx2Dot, TX>(ref t);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "no integer tile for this format");
        }
    }

    /// <summary>One tile's pointers: four weight rows (repeated when fewer), the first x row's quantised blocks,
    /// scales and sums (rows of <see cref="Blocks"/> blocks), y at [first x row, first weight row], and Q4_K's
    /// decoded scales (<see cref="DecodeQ4_K"/>).</summary>
    private struct Tile
    {
        public byte* W0, W1, W2, W3;
        public int WeightRows;
        public sbyte* Q;
        public float* Scale;
        public int* Sum;
        public int Blocks;
        public float* Y;
        public long Ldy;
        public float* Decoded;
    }

    // ------------------------------------------------------------------ x rows per tile, as type parameters

    /// <summary>How many x rows a tile holds: a type parameter, so the JIT drops the unused rows' code.</summary>
    private interface IXRows
    {
        static abstract int Count { get; }
    }

    private struct X1 : IXRows
    {
        public static int Count => 1;
    }

    private struct X2 : IXRows
    {
        public static int Count => 2;
    }

    private struct X3 : IXRows
    {
        public static int Count => 3;
    }

    private struct X4 : IXRows
    {
        public static int Count => 4;
    }

    // ------------------------------------------------------------------ the unsigned × signed dot

    /// <summary>init + the lanes of Σ u·s over one 32-byte block (8 int32 lanes whose total is the dot).</summary>
    private interface IDotIsa
    {
        static abstract Vector256<int> Dot(Vector256<int> init, Vector256<byte> u, Vector256<sbyte> s);
    }

    private struct Vnni : IDotIsa
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<int> init, Vector256<byte> u, Vector256<sbyte> s) =>
            AvxVnni.MultiplyWideningAndAdd(init, u, s);
    }

    /// <summary>vpmaddubsw's 16-bit pair sums saturate beyond 32767: every caller keeps u ≤ 128.</summary>
    private struct Avx2Dot : IDotIsa
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(Vector256<int> init, Vector256<byte> u, Vector256<sbyte> s) =>
            init + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));
    }

    // ------------------------------------------------------------------ Q8_0 and Q4_0: an fp16 scale, 32 levels

    /// <summary>One 32-weight block or activation block made ready for the pair dots: a byte vector and an int32
    /// vector (the other operand, or the start of the integer sum).</summary>
    private struct Operand
    {
        public Vector256<byte> V;
        public Vector256<int> I;
    }

    /// <summary>What differs between the block formats and instruction sets of <see cref="Blocks32"/>.</summary>
    private interface IBlockKind
    {
        static abstract int Bytes { get; }
        static abstract Operand Weight(byte* block);
        static abstract Operand Activation(sbyte* q);
        static abstract Vector256<int> Dot(in Operand w, in Operand a);
    }

    /// <summary>
    /// Q8_0 under VNNI: |q_w| unsigned × q_a carrying q_w's sign, one vpdpbusd. Measured per thread on an AMD
    /// EPYC with AVX-512 (profile-dense-decode, batch 4 and 16), this ran about 12 % slower than AVX2's
    /// vpmaddubsw + vpmaddwd, and taking q_a + 128 unsigned with the sum started at −128·Σq_w (no sign per pair)
    /// about 25 % slower: the Avx512 path takes <see cref="Q8_0Avx2"/>. The signed weights ride in I.
    /// </summary>
    private struct Q8_0Vnni : IBlockKind
    {
        public static int Bytes => Q8_0Block.Bytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Operand Weight(byte* block) => Q8_0Avx2.Weight(block);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Operand Activation(sbyte* q) => new() { V = Vector256.Load((byte*)q) };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(in Operand w, in Operand a) =>
            AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, w.V, Avx2.Sign(a.V.AsSByte(), w.I.AsSByte()));
    }

    /// <summary>Q8_0 under AVX2: |q_w| unsigned (≤ 128) × q_a carrying q_w's sign, as <see cref="QuantDots"/>.
    /// The signed weights ride in I.</summary>
    private struct Q8_0Avx2 : IBlockKind
    {
        public static int Bytes => Q8_0Block.Bytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Operand Weight(byte* block)
        {
            var q = Vector256.Load((sbyte*)(block + 2));
            return new Operand { V = Avx2.Abs(q), I = q.AsInt32() };
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Operand Activation(sbyte* q) => new() { V = Vector256.Load((byte*)q) };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(in Operand w, in Operand a) =>
            Avx2Dot.Dot(Vector256<int>.Zero, w.V, Avx2.Sign(a.V.AsSByte(), w.I.AsSByte()));
    }

    /// <summary>Q4_0: the nibbles (q + 8, unsigned) × q_a, the integer sum started at −8·Σq_a.</summary>
    private struct Q4_0Kind<TIsa> : IBlockKind where TIsa : struct, IDotIsa
    {
        public static int Bytes => Q4_0Block.Bytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Operand Weight(byte* block)
        {
            var raw = Vector128.Load(block + 2);
            var mask = Vector128.Create((byte)0x0F);
            return new Operand
            {
                V = Vector256.Create(raw & mask, Vector128.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & mask),
            };
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Operand Activation(sbyte* q)
        {
            var v = Vector256.Load(q);
            return new Operand
            {
                V = v.AsByte(), I = -TIsa.Dot(Vector256<int>.Zero, Vector256.Create((byte)8), v),
            };
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Dot(in Operand w, in Operand a) => TIsa.Dot(a.I, w.V, a.V.AsSByte());
    }

    /// <summary>acc + dot · (dw · da), the dot's int32 lanes converted to float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scaled(Vector256<float> acc, Vector256<int> dot, Vector256<float> dw,
        Vector256<float> da) => Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), dw * da, acc);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Blocks32<TKind, TX>(ref Tile t) where TKind : struct, IBlockKind where TX : struct, IXRows
    {
        // acc{n}{m}: weight row n × x row m, 8 lanes whose total is y[m, n].
        Vector256<float> acc00 = default, acc01 = default, acc02 = default, acc03 = default;
        Vector256<float> acc10 = default, acc11 = default, acc12 = default, acc13 = default;
        Vector256<float> acc20 = default, acc21 = default, acc22 = default, acc23 = default;
        Vector256<float> acc30 = default, acc31 = default, acc32 = default, acc33 = default;
        byte* w0 = t.W0, w1 = t.W1, w2 = t.W2, w3 = t.W3;
        sbyte* q = t.Q;
        float* s = t.Scale;
        int nb = t.Blocks;
        long stride = (long)nb * Q8Activations.Block;
        for (int b = 0; b < nb; b++, w0 += TKind.Bytes, w1 += TKind.Bytes, w2 += TKind.Bytes, w3 += TKind.Bytes,
             q += Q8Activations.Block, s++)
        {
            var o0 = TKind.Weight(w0);
            var o1 = TKind.Weight(w1);
            var o2 = TKind.Weight(w2);
            var o3 = TKind.Weight(w3);
            var d0 = Vector256.Create(HalfTable.Get(w0));
            var d1 = Vector256.Create(HalfTable.Get(w1));
            var d2 = Vector256.Create(HalfTable.Get(w2));
            var d3 = Vector256.Create(HalfTable.Get(w3));
            {
                var x = TKind.Activation(q);
                var da = Vector256.Create(s[0]);
                acc00 = Scaled(acc00, TKind.Dot(o0, x), d0, da);
                acc10 = Scaled(acc10, TKind.Dot(o1, x), d1, da);
                acc20 = Scaled(acc20, TKind.Dot(o2, x), d2, da);
                acc30 = Scaled(acc30, TKind.Dot(o3, x), d3, da);
            }
            if (TX.Count > 1)
            {
                var x = TKind.Activation(q + stride);
                var da = Vector256.Create(s[nb]);
                acc01 = Scaled(acc01, TKind.Dot(o0, x), d0, da);
                acc11 = Scaled(acc11, TKind.Dot(o1, x), d1, da);
                acc21 = Scaled(acc21, TKind.Dot(o2, x), d2, da);
                acc31 = Scaled(acc31, TKind.Dot(o3, x), d3, da);
            }
            if (TX.Count > 2)
            {
                var x = TKind.Activation(q + 2 * stride);
                var da = Vector256.Create(s[2 * nb]);
                acc02 = Scaled(acc02, TKind.Dot(o0, x), d0, da);
                acc12 = Scaled(acc12, TKind.Dot(o1, x), d1, da);
                acc22 = Scaled(acc22, TKind.Dot(o2, x), d2, da);
                acc32 = Scaled(acc32, TKind.Dot(o3, x), d3, da);
            }
            if (TX.Count > 3)
            {
                var x = TKind.Activation(q + 3 * stride);
                var da = Vector256.Create(s[3 * nb]);
                acc03 = Scaled(acc03, TKind.Dot(o0, x), d0, da);
                acc13 = Scaled(acc13, TKind.Dot(o1, x), d1, da);
                acc23 = Scaled(acc23, TKind.Dot(o2, x), d2, da);
                acc33 = Scaled(acc33, TKind.Dot(o3, x), d3, da);
            }
        }
        Store<TX>(ref t, acc00, acc10, acc20, acc30, 0);
        if (TX.Count > 1) Store<TX>(ref t, acc01, acc11, acc21, acc31, 1);
        if (TX.Count > 2) Store<TX>(ref t, acc02, acc12, acc22, acc32, 2);
        if (TX.Count > 3) Store<TX>(ref t, acc03, acc13, acc23, acc33, 3);
    }

    /// <summary>y[m, n …] from the four weight rows' accumulators of x row m (real rows only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TX>(ref Tile t, Vector256<float> a0, Vector256<float> a1, Vector256<float> a2,
        Vector256<float> a3, int m) where TX : struct, IXRows
    {
        float* y = t.Y + m * t.Ldy;
        y[0] = Vector256.Sum(a0);
        if (t.WeightRows > 1) y[1] = Vector256.Sum(a1);
        if (t.WeightRows > 2) y[2] = Vector256.Sum(a2);
        if (t.WeightRows > 3) y[3] = Vector256.Sum(a3);
    }

    // ------------------------------------------------------------------ Q4_K: superblocks of 8 sub-blocks

    /// <summary>
    /// Q4_K superblocks (256 weights: fp16 d and dmin, eight 6-bit scales and mins, 128 bytes of nibbles where
    /// sub-block 2c is the low nibbles of bytes 32c … 32c + 31 and 2c + 1 their high nibbles). The scales come
    /// decoded (<see cref="DecodeQ4_K"/>); per pair and superblock the mins meet the eight activation blocks'
    /// d_a·Σq_a in one multiply-add, and per sub-block a dot, a conversion and a multiply-add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Q4_KBlocks<TIsa, TX>(ref Tile t) where TIsa : struct, IDotIsa where TX : struct, IXRows
    {
        Vector256<float> acc00 = default, acc01 = default, acc02 = default, acc03 = default;
        Vector256<float> acc10 = default, acc11 = default, acc12 = default, acc13 = default;
        Vector256<float> acc20 = default, acc21 = default, acc22 = default, acc23 = default;
        Vector256<float> acc30 = default, acc31 = default, acc32 = default, acc33 = default;
        byte* w0 = t.W0 + 16, w1 = t.W1 + 16, w2 = t.W2 + 16, w3 = t.W3 + 16;
        int nb = t.Blocks;
        long stride = (long)nb * Q8Activations.Block;
        var mask = Vector256.Create((byte)0x0F);
        // decoded: per superblock, 32 scales (weight row r's sub-block j at 8r + j), then 32 mins.
        float* decoded = t.Decoded;
        for (int b0 = 0; b0 < nb; b0 += 8, w0 += Q4_KBlock.Bytes, w1 += Q4_KBlock.Bytes, w2 += Q4_KBlock.Bytes,
             w3 += Q4_KBlock.Bytes, decoded += 64)
        {
            float* mins = decoded + 32;
            {
                var off = Offsets(t.Scale + b0, t.Sum + b0);
                acc00 = Fma.MultiplyAddNegated(Vector256.Load(mins), off, acc00);
                acc10 = Fma.MultiplyAddNegated(Vector256.Load(mins + 8), off, acc10);
                acc20 = Fma.MultiplyAddNegated(Vector256.Load(mins + 16), off, acc20);
                acc30 = Fma.MultiplyAddNegated(Vector256.Load(mins + 24), off, acc30);
            }
            if (TX.Count > 1)
            {
                var off = Offsets(t.Scale + nb + b0, t.Sum + nb + b0);
                acc01 = Fma.MultiplyAddNegated(Vector256.Load(mins), off, acc01);
                acc11 = Fma.MultiplyAddNegated(Vector256.Load(mins + 8), off, acc11);
                acc21 = Fma.MultiplyAddNegated(Vector256.Load(mins + 16), off, acc21);
                acc31 = Fma.MultiplyAddNegated(Vector256.Load(mins + 24), off, acc31);
            }
            if (TX.Count > 2)
            {
                var off = Offsets(t.Scale + 2 * nb + b0, t.Sum + 2 * nb + b0);
                acc02 = Fma.MultiplyAddNegated(Vector256.Load(mins), off, acc02);
                acc12 = Fma.MultiplyAddNegated(Vector256.Load(mins + 8), off, acc12);
                acc22 = Fma.MultiplyAddNegated(Vector256.Load(mins + 16), off, acc22);
                acc32 = Fma.MultiplyAddNegated(Vector256.Load(mins + 24), off, acc32);
            }
            if (TX.Count > 3)
            {
                var off = Offsets(t.Scale + 3 * nb + b0, t.Sum + 3 * nb + b0);
                acc03 = Fma.MultiplyAddNegated(Vector256.Load(mins), off, acc03);
                acc13 = Fma.MultiplyAddNegated(Vector256.Load(mins + 8), off, acc13);
                acc23 = Fma.MultiplyAddNegated(Vector256.Load(mins + 16), off, acc23);
                acc33 = Fma.MultiplyAddNegated(Vector256.Load(mins + 24), off, acc33);
            }
            for (int c = 0; c < 4; c++)
            {
                // Bytes 32c … 32c + 31: sub-block 2c in the low nibbles, 2c + 1 in the high ones.
                var r0 = Vector256.Load(w0 + 32 * c);
                var r1 = Vector256.Load(w1 + 32 * c);
                var r2 = Vector256.Load(w2 + 32 * c);
                var r3 = Vector256.Load(w3 + 32 * c);
                SubBlock<TIsa, TX>(ref t, r0 & mask, r1 & mask, r2 & mask, r3 & mask, decoded + 2 * c, b0 + 2 * c,
                    ref acc00, ref acc01, ref acc02, ref acc03, ref acc10, ref acc11, ref acc12, ref acc13,
                    ref acc20, ref acc21, ref acc22, ref acc23, ref acc30, ref acc31, ref acc32, ref acc33);
                SubBlock<TIsa, TX>(ref t, Vector256.ShiftRightLogical(r0.AsUInt16(), 4).AsByte() & mask,
                    Vector256.ShiftRightLogical(r1.AsUInt16(), 4).AsByte() & mask,
                    Vector256.ShiftRightLogical(r2.AsUInt16(), 4).AsByte() & mask,
                    Vector256.ShiftRightLogical(r3.AsUInt16(), 4).AsByte() & mask, decoded + 2 * c + 1,
                    b0 + 2 * c + 1,
                    ref acc00, ref acc01, ref acc02, ref acc03, ref acc10, ref acc11, ref acc12, ref acc13,
                    ref acc20, ref acc21, ref acc22, ref acc23, ref acc30, ref acc31, ref acc32, ref acc33);
            }
        }
        Store<TX>(ref t, acc00, acc10, acc20, acc30, 0);
        if (TX.Count > 1) Store<TX>(ref t, acc01, acc11, acc21, acc31, 1);
        if (TX.Count > 2) Store<TX>(ref t, acc02, acc12, acc22, acc32, 2);
        if (TX.Count > 3) Store<TX>(ref t, acc03, acc13, acc23, acc33, 3);
    }

    /// <summary>One Q4_K sub-block (activation block blk) of the four weight rows, levels l0 … l3, against the tile's
    /// x rows; scales: the four rows' d·scale of this sub-block, 8 floats apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SubBlock<TIsa, TX>(ref Tile t, Vector256<byte> l0, Vector256<byte> l1, Vector256<byte> l2,
        Vector256<byte> l3, float* scales, int blk,
        ref Vector256<float> acc00, ref Vector256<float> acc01, ref Vector256<float> acc02, ref Vector256<float> acc03,
        ref Vector256<float> acc10, ref Vector256<float> acc11, ref Vector256<float> acc12, ref Vector256<float> acc13,
        ref Vector256<float> acc20, ref Vector256<float> acc21, ref Vector256<float> acc22, ref Vector256<float> acc23,
        ref Vector256<float> acc30, ref Vector256<float> acc31, ref Vector256<float> acc32, ref Vector256<float> acc33)
        where TIsa : struct, IDotIsa where TX : struct, IXRows
    {
        var d0 = Vector256.Create(scales[0]);
        var d1 = Vector256.Create(scales[8]);
        var d2 = Vector256.Create(scales[16]);
        var d3 = Vector256.Create(scales[24]);
        int nb = t.Blocks;
        long stride = (long)nb * Q8Activations.Block;
        sbyte* q = t.Q + (long)blk * Q8Activations.Block;
        {
            var x = Vector256.Load(q);
            var da = Vector256.Create(t.Scale[blk]);
            acc00 = Scaled(acc00, TIsa.Dot(default, l0, x), d0, da);
            acc10 = Scaled(acc10, TIsa.Dot(default, l1, x), d1, da);
            acc20 = Scaled(acc20, TIsa.Dot(default, l2, x), d2, da);
            acc30 = Scaled(acc30, TIsa.Dot(default, l3, x), d3, da);
        }
        if (TX.Count > 1)
        {
            var x = Vector256.Load(q + stride);
            var da = Vector256.Create(t.Scale[nb + blk]);
            acc01 = Scaled(acc01, TIsa.Dot(default, l0, x), d0, da);
            acc11 = Scaled(acc11, TIsa.Dot(default, l1, x), d1, da);
            acc21 = Scaled(acc21, TIsa.Dot(default, l2, x), d2, da);
            acc31 = Scaled(acc31, TIsa.Dot(default, l3, x), d3, da);
        }
        if (TX.Count > 2)
        {
            var x = Vector256.Load(q + 2 * stride);
            var da = Vector256.Create(t.Scale[2 * nb + blk]);
            acc02 = Scaled(acc02, TIsa.Dot(default, l0, x), d0, da);
            acc12 = Scaled(acc12, TIsa.Dot(default, l1, x), d1, da);
            acc22 = Scaled(acc22, TIsa.Dot(default, l2, x), d2, da);
            acc32 = Scaled(acc32, TIsa.Dot(default, l3, x), d3, da);
        }
        if (TX.Count > 3)
        {
            var x = Vector256.Load(q + 3 * stride);
            var da = Vector256.Create(t.Scale[3 * nb + blk]);
            acc03 = Scaled(acc03, TIsa.Dot(default, l0, x), d0, da);
            acc13 = Scaled(acc13, TIsa.Dot(default, l1, x), d1, da);
            acc23 = Scaled(acc23, TIsa.Dot(default, l2, x), d2, da);
            acc33 = Scaled(acc33, TIsa.Dot(default, l3, x), d3, da);
        }
    }

    /// <summary>
    /// Four Q4_K rows' d·scale_j and dmin·min_j for all their superblocks into <paramref name="decoded"/>: per
    /// superblock 32 scales (row r, sub-block j at 8r + j), then 32 mins. The 6-bit fields as
    /// <see cref="Q4_KBlock.ScaleMin"/> unpacks them, read straight from the block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeQ4_K(byte* w0, byte* w1, byte* w2, byte* w3, int superblocks, float* decoded)
    {
        for (int sb = 0; sb < superblocks; sb++, decoded += 64)
        {
            long at = (long)sb * Q4_KBlock.Bytes;
            DecodeRow(w0 + at, decoded, decoded + 32);
            DecodeRow(w1 + at, decoded + 8, decoded + 40);
            DecodeRow(w2 + at, decoded + 16, decoded + 48);
            DecodeRow(w3 + at, decoded + 24, decoded + 56);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DecodeRow(byte* superblock, float* scales, float* mins)
    {
        float d = HalfTable.Get(superblock), dmin = HalfTable.Get(superblock + 2);
        byte* p = superblock + 4;
        for (int j = 0; j < 4; j++)
        {
            scales[j] = d * (p[j] & 63);
            mins[j] = dmin * (p[j + 4] & 63);
            scales[j + 4] = d * ((p[j + 8] & 0xF) | ((p[j] >> 6) << 4));
            mins[j + 4] = dmin * ((p[j + 8] >> 4) | ((p[j + 4] >> 6) << 4));
        }
    }

    /// <summary>The eight activation blocks' d_a · Σq_a: what each sub-block's min is multiplied by.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Offsets(float* scale, int* sum) =>
        Vector256.Load(scale) * Avx.ConvertToVector256Single(Vector256.Load(sum));
}
