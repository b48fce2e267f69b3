using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// Distributed GRPO at 2 and 3 ranks equals one process with the same seed after 3 steps: the same rollouts, the
/// same metrics, parameters within 1e-5 relative and bit-identical over the ranks, with dapo at μ = 1 and with the
/// grpo loss at μ = 2 with β ≠ 0, routing replay and dynamic sampling (tests/DistributedWorker/DistributedGrpoCheck.cs
/// under mpirun).
/// </summary>
public class DistributedGrpoTests
{
    [MpiTheory]
    [InlineData(2)]
    [InlineData(3)]
    public void Distributed_grpo_equals_one_process(int ranks)
    {
        var r = MpiRun.Start(ranks, [MpiRun.WorkerDll, "distributed-grpo"], TimeSpan.FromMinutes(5));
        Assert.False(r.TimedOut, r.Output);
        Assert.True(r.ExitCode == 0, r.Output);
        foreach (var name in new[] { "dapo", "grpo-mu2-kl-replay-dynamic" })
            Assert.Contains($"distributed GRPO ({name}) over {ranks} ranks vs one process", r.Output);
        for (int rank = 0; rank < ranks; rank++)
            Assert.Contains($"rank {rank} of {ranks}: distributed-grpo ok", r.Output);
    }
}
