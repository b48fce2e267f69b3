// Source: torch.topk (sorted, largest), NaN ordered above every number.
namespace NativeReasoner.Kernels.Reference;

public sealed unsafe partial class ReferenceKernels
{
    public void TopK(float* x, float* values, long* indices, int rows, int cols, int k)
    {
        // x: [rows, cols] → values, indices: [rows, k]
        if (k < 0 || k > cols) throw new ArgumentOutOfRangeException(nameof(k), k, "must be in [0, cols]");
        var order = new int[cols];
        for (int r = 0; r < rows; r++)
        {
            float* row = x + (long)r * cols;
            for (int c = 0; c < cols; c++) order[c] = c;
            // A full stable sort, best first: the oracle does not need to be clever.
            Array.Sort(order, (a, b) => RanksBefore(row[a], a, row[b], b) ? -1 : RanksBefore(row[b], b, row[a], a) ? 1 : 0);
            for (int j = 0; j < k; j++)
            {
                values[(long)r * k + j] = row[order[j]];
                indices[(long)r * k + j] = order[j];
            }
        }
    }

    /// <summary>True when (a at index ia) comes before (b at index ib): larger first, NaN largest, ties by lower index.</summary>
    internal static bool RanksBefore(float a, int ia, float b, int ib)
    {
        bool na = float.IsNaN(a), nb = float.IsNaN(b);
        if (na != nb) return na;
        if (!na && a != b) return a > b;
        return ia < ib;
    }
}
