// Source: RoPE (arXiv:2104.09864) on interleaved pairs, as official DeepSeek-V3 inference/model.py apply_rotary_emb.
using System.Runtime.Intrinsics;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    private struct RopeState
    {
        public float* X, Cos, Sin, Y;
        public int T, Mid, D;
        public bool Inverse;
    }

    public void Rope(float* x, float* cos, float* sin, float* y, int outer, int T, int mid, int D, bool inverse)
    {
        // x, y: [outer, T, mid, D]; cos, sin: [T, D/2]
        if ((D & 1) != 0) throw new ArgumentException("D must be even", nameof(D));
        var st = new RopeState { X = x, Cos = cos, Sin = sin, Y = y, T = T, Mid = mid, D = D, Inverse = inverse };
        CpuParallel.For((long)outer * T * mid, Math.Max(1, RowMinWork / Math.Max(1, D)), &RopeBody, &st);
    }

    private static void RopeBody(void* state, long start, long end)
    {
        var st = (RopeState*)state;
        int D = st->D, half = D / 2;
        // The sign pattern turns the pair swap (x1, x0) into (−x1·s, x0·s); inverse flips the angle.
        var sign = st->Inverse ? Vector256.Create(1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f)
                               : Vector256.Create(-1f, 1f, -1f, 1f, -1f, 1f, -1f, 1f);
        float sgn = st->Inverse ? -1f : 1f;
        for (long row = start; row < end; row++)
        {
            long t = row / st->Mid % st->T;
            float* c = st->Cos + t * half, s = st->Sin + t * half;
            float* x = st->X + row * D, y = st->Y + row * D;
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                // 8 pairs (16 floats) per step: duplicate each cos/sin across its pair's two lanes.
                for (; i <= half - 8; i += 8)
                {
                    var c8 = Vector256.Load(c + i);
                    var s8 = Vector256.Load(s + i);
                    var cLo = Vector256.Shuffle(c8, Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3));
                    var cHi = Vector256.Shuffle(c8, Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7));
                    var sLo = Vector256.Shuffle(s8, Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3)) * sign;
                    var sHi = Vector256.Shuffle(s8, Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7)) * sign;
                    var x0 = Vector256.Load(x + 2 * i);
                    var x1 = Vector256.Load(x + 2 * i + 8);
                    var swap = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
                    var y0 = x0 * cLo + Vector256.Shuffle(x0, swap) * sLo;
                    var y1 = x1 * cHi + Vector256.Shuffle(x1, swap) * sHi;
                    Vector256.Store(y0, y + 2 * i);
                    Vector256.Store(y1, y + 2 * i + 8);
                }
            }
            for (; i < half; i++)
            {
                float ci = c[i], si = sgn * s[i];
                float a = x[2 * i], b = x[2 * i + 1];
                y[2 * i] = a * ci - b * si;
                y[2 * i + 1] = a * si + b * ci;
            }
        }
    }
}
