using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// Expert-parallel MoE (tests/DistributedWorker/ExpertParallelCheck.cs) at 2 and 3 ranks under mpirun: forward,
/// input, expert, gate and shared-expert gradients and the bias step equal the one-process layer (≤ 1e-5); an
/// expert count the group does not divide is refused; the bytes exchanged are counted. And at 1 rank on the
/// local group, where the exchanges are copies.
/// </summary>
public class ExpertParallelTests
{
    [MpiTheory]
    [InlineData(2)]
    [InlineData(3)]
    public void Expert_parallel_moe_equals_the_one_process_layer(int ranks)
    {
        var r = MpiRun.Start(ranks, [MpiRun.WorkerDll, "expert-parallel"], TimeSpan.FromMinutes(3));
        Assert.False(r.TimedOut, r.Output);
        Assert.True(r.ExitCode == 0, r.Output);
        for (int rank = 0; rank < ranks; rank++)
        {
            Assert.Contains($"rank {rank} of {ranks}: expert-parallel ok", r.Output);
            Assert.Matches($"rank {rank} of {ranks}: expert-parallel bytes sent per layer and step: all-to-all [1-9]",
                r.Output);
        }
    }

    [Fact]
    public void Expert_parallel_moe_runs_on_the_local_group()
    {
        var (code, output) = MpiCollectiveTests.RunWorker("expert-parallel");
        Assert.True(code == 0, output);
        Assert.Contains("rank 0 of 1: expert-parallel ok", output);
        Assert.Contains("all-to-all 0, loads 0", output);
    }
}
