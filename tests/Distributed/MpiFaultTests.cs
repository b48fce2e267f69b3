using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>A rank that hangs or dies ends the whole job with a clear error within a bounded time.</summary>
public class MpiFaultTests
{
    [MpiFact]
    public void A_hung_rank_ends_the_job_after_the_collective_timeout()
    {
        var r = MpiRun.Start(2, [MpiRun.WorkerDll, "hang"], TimeSpan.FromMinutes(2),
            new Dictionary<string, string> { ["NR_COLLECTIVE_TIMEOUT_S"] = "5" });
        Assert.False(r.TimedOut, "the job outlived its 2-minute limit: " + r.Output);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("rank 0 of 2: aborting the job: AllReduce did not complete within 5 s", r.Output);
    }

    [MpiFact]
    public void A_dead_rank_ends_the_job()
    {
        var r = MpiRun.Start(2, [MpiRun.WorkerDll, "die"], TimeSpan.FromMinutes(2),
            new Dictionary<string, string> { ["NR_COLLECTIVE_TIMEOUT_S"] = "30" });
        Assert.False(r.TimedOut, "the job outlived its 2-minute limit: " + r.Output);
        Assert.NotEqual(0, r.ExitCode);
        Assert.DoesNotContain("all-reduce completed", r.Output);
        // mpirun names the rank that ended (signal 9), or the survivor's timeout does
        Assert.True(r.Output.Contains("rank 1") || r.Output.Contains("did not complete"), r.Output);
    }
}
