// Source: ggml's mul_mat_id with quantised experts (ggml-cpu.c, ggml_compute_forward_mul_mat_id): the activations
//         quantised once, then (expert, weight row) chunks of every expert shared out over the threads.
using System.Runtime.CompilerServices;
using NativeReasoner.Kernels.Cpu.Gemm;
using NativeReasoner.Kernels.Cpu.Quant;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <summary>
    /// The routed experts' products with packed weights (see <see cref="IQuantizedMatMul.GroupedQuantizedMatMul"/>).
    /// Experts with fewer than <see cref="PanelFromRows"/> rows — every expert at decode — share one pass: x is
    /// quantised once per row for all of them and all sets (gate and up read the same rows), and the (set, expert,
    /// weight row) items go over the threads together, so a decode step wakes the pool once per projection
    /// rather than once per expert. Experts with more rows (prefill) take <see cref="QuantizedMatMul"/>'s panel
    /// SGEMM one by one, as does every expert of a format without integer dots (bf16, Q6_K).
    /// </summary>
    public void GroupedQuantizedMatMul(QuantFormat format, int sets, int groups, int* offsets, int N, int K,
        float* x, byte** w, float** y) =>
        GroupedQuantizedMatMul(QuantIsas.Best, format, sets, groups, offsets, N, K, x, w, y);

    internal void GroupedQuantizedMatMul(QuantIsa isa, QuantFormat format, int sets, int groups, int* offsets, int N,
        int K, float* x, byte** w, float** y)
    {
        IQuantizedMatMul.ValidateGrouped(format, sets, groups, offsets, N, K);
        if (!QuantIsas.Supported(isa)) throw new PlatformNotSupportedException($"this CPU cannot run {isa}");
        int M = offsets[groups];
        if (M == 0 || N == 0) return;
        bool shared = HasIntegerDot(format) && K > 0;
        int small = 0;
        for (int g = 0; g < groups; g++)
        {
            int m = offsets[g + 1] - offsets[g];
            if (m == 0) continue;
            if (shared && m < PanelFromRows)
            {
                small++;
                continue;
            }
            for (int s = 0; s < sets; s++)
                QuantizedMatMul(isa, format, m, N, K, x + (long)offsets[g] * K, w[s * groups + g],
                    y[s] + (long)offsets[g] * N);
        }
        if (small == 0) return;

        // items: (set, group) pairs of the small groups, in the scratch after the quantised rows.
        long activationFloats = Q8Activations.ScratchFloats(M, K);
        float* scratch = GemmScratch.Rent(activationFloats + 2L * small * sets);
        try
        {
            var job = new GroupedJob
            {
                Isa = isa, Format = format, Groups = groups, N = N, RowBytes = format.RowBytes(K), Offsets = offsets,
                W = w, Y = y, Items = (int*)(scratch + activationFloats),
            };
            int count = 0;
            for (int s = 0; s < sets; s++)
                for (int g = 0; g < groups; g++)
                {
                    int m = offsets[g + 1] - offsets[g];
                    if (m == 0 || m >= PanelFromRows) continue;
                    job.Items[2 * count] = s;
                    job.Items[2 * count + 1] = g;
                    count++;
                }
            // Only the small groups' rows are read; quantising all M keeps the row numbering (prefill has few).
            job.A = Q8Activations.Quantize(x, M, K, scratch);
            long minRows = Math.Max(1, 65536 / job.RowBytes);
            CpuParallel.For((long)count * N, minRows, &GroupedBody, &job);
        }
        finally
        {
            GemmScratch.Return(scratch);
        }
    }

    private struct GroupedJob
    {
        public QuantIsa Isa;
        public QuantFormat Format;
        public int Groups, N;
        public long RowBytes;
        public int* Offsets, Items;
        public byte** W;
        public float** Y;
        public Q8Activations A;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GroupedBody(void* state, long start, long end)
    {
        ref GroupedJob job = ref *(GroupedJob*)state;
        for (long i = start; i < end; i++)
        {
            long item = i / job.N;
            int n = (int)(i - item * job.N);
            int s = job.Items[2 * item], g = job.Items[2 * item + 1];
            byte* row = job.W[s * job.Groups + g] + n * job.RowBytes;
            float* ys = job.Y[s];
            for (int m = job.Offsets[g]; m < job.Offsets[g + 1]; m++)
                ys[(long)m * job.N + n] = QuantDots.Dot(job.Isa, job.Format, row, job.A, m);
        }
    }
}
