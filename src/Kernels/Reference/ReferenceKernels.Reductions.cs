// Source: torch.sum / mean / amax / amin along one axis (first index of the extreme).
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void Reduce(ReduceOp op, float* x, float* y, int outer, int dim, int inner, int* argIndex)
    {
        // x: [outer, dim, inner] → y: [outer, inner]
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                float* col = x + (long)o * dim * inner + i; // element d at col[d * inner]
                long yi = (long)o * inner + i;
                switch (op)
                {
                    case ReduceOp.Sum:
                    case ReduceOp.Mean:
                        {
                            double s = 0;
                            for (int d = 0; d < dim; d++) s += col[(long)d * inner];
                            y[yi] = (float)(op == ReduceOp.Mean ? s / dim : s);
                            break;
                        }
                    case ReduceOp.Max:
                    case ReduceOp.Min:
                        {
                            if (dim == 0) throw new ArgumentException("Max/Min over an empty axis", nameof(dim));
                            float best = col[0];
                            int arg = 0;
                            for (int d = 1; d < dim && !float.IsNaN(best); d++)
                            {
                                float v = col[(long)d * inner];
                                // Strictly better only, so ties keep the first index; the first NaN wins and sticks.
                                bool better = float.IsNaN(v) || (op == ReduceOp.Max ? v > best : v < best);
                                if (better) { best = v; arg = d; }
                            }
                            y[yi] = best;
                            if (argIndex != null) argIndex[yi] = arg;
                            break;
                        }
                    default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
                }
            }
    }
}
