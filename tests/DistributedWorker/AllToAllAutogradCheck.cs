using NativeReasoner.Distributed;

namespace NativeReasoner.DistributedWorker;

/// <summary>
/// The differentiable all-to-all (expert parallelism's dispatch): rows reach their ranks, and the gradient of
/// each row comes back from the rank it went to — here (receiver + 1) times its values, exact in float32.
/// </summary>
internal static class AllToAllAutogradCheck
{
    public static List<string> Run(IProcessGroup g)
    {
        var failures = new List<string>();
        int n = g.Size, me = g.Rank;
        using var scope = new TensorScope();
        // rank r sends (r + q) mod 3 + 1 rows of [me·10 + q, 1] to rank q
        var sendCounts = Enumerable.Range(0, n).Select(q => (me + q) % 3 + 1).ToArray();
        var rows = Enumerable.Range(0, n).SelectMany(q => Enumerable.Range(0, sendCounts[q])
            .SelectMany(_ => new float[] { me * 10 + q, 1 })).ToArray();
        var x = Tensor.FromArray(rows, sendCounts.Sum(), 2).RequiresGrad_();
        var recvCounts = g.ExchangeCounts(sendCounts);
        var y = DistributedFunctional.AllToAllV(g, x, sendCounts, recvCounts);   // [Σ recvCounts, 2]
        var expected = Enumerable.Range(0, n).SelectMany(r => Enumerable.Range(0, (r + me) % 3 + 1)
            .SelectMany(_ => new float[] { r * 10 + me, 1 })).ToArray();
        if (!y.ToArray().SequenceEqual(expected)) failures.Add("AllToAllV forward: rows did not arrive in rank order");
        // loss = (me + 1) · Σ y: every row's gradient is (receiver + 1)
        var loss = (y * (float)(me + 1)).Sum();
        loss.Backward();
        var grad = x.Grad?.ToArray() ?? [];
        var expectedGrad = Enumerable.Range(0, n).SelectMany(q => Enumerable.Repeat((float)(q + 1),
            2 * sendCounts[q])).ToArray();
        if (!grad.SequenceEqual(expectedGrad))
            failures.Add($"AllToAllV backward: got [{string.Join(", ", grad)}], expected [{string.Join(", ",
                expectedGrad)}]");
        return failures;
    }
}
