using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// N ranks × batch/N equal one process × the batch after 5 AdamW steps (≤ 1e-5 relative; every rank bit-identical):
/// tests/DistributedWorker/DataParallelCheck.cs under mpirun.
/// </summary>
public class DataParallelEquivalenceTests
{
    [MpiTheory]
    [InlineData(2)]
    [InlineData(3)]
    public void Data_parallel_sft_equals_one_process(int ranks)
    {
        var r = MpiRun.Start(ranks, [MpiRun.WorkerDll, "data-parallel"], TimeSpan.FromMinutes(5));
        Assert.False(r.TimedOut, r.Output);
        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Contains($"data-parallel over {ranks} ranks vs one process", r.Output);
        for (int rank = 0; rank < ranks; rank++) Assert.Contains($"rank {rank} of {ranks}: data-parallel ok", r.Output);
    }
}
