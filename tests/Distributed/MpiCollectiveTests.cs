using System.Diagnostics;
using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// The collectives at 2 and 3 ranks under mpirun (tests/DistributedWorker/CollectiveChecks.cs: exact sums of
/// integer-valued floats, uneven and empty all-to-all, split groups, a staged device tensor, argument errors),
/// and the same checks in one process on the local group.
/// </summary>
public class MpiCollectiveTests
{
    [MpiTheory]
    [InlineData(2)]
    [InlineData(3)]
    public void Collectives_are_exact_at_several_ranks(int ranks)
    {
        var r = MpiRun.Start(ranks, [MpiRun.WorkerDll, "collectives"], TimeSpan.FromMinutes(3));
        Assert.False(r.TimedOut, r.Output);
        Assert.True(r.ExitCode == 0, r.Output);
        for (int rank = 0; rank < ranks; rank++) Assert.Contains($"rank {rank} of {ranks}: collectives ok", r.Output);
    }

    [MpiTheory]
    [InlineData(2)]
    [InlineData(3)]
    public void The_differentiable_all_to_all_sends_gradients_home(int ranks)
    {
        var r = MpiRun.Start(ranks, [MpiRun.WorkerDll, "all-to-all-autograd"], TimeSpan.FromMinutes(3));
        Assert.False(r.TimedOut, r.Output);
        Assert.True(r.ExitCode == 0, r.Output);
        for (int rank = 0; rank < ranks; rank++)
            Assert.Contains($"rank {rank} of {ranks}: all-to-all-autograd ok", r.Output);
    }

    [Fact]
    public void The_differentiable_all_to_all_runs_on_the_local_group()
    {
        var (code, output) = RunWorker("all-to-all-autograd");
        Assert.True(code == 0, output);
        Assert.Contains("rank 0 of 1: all-to-all-autograd ok", output);
    }

    [Fact]
    public void Collectives_run_on_the_local_group_without_mpirun()
    {
        var (code, output) = RunWorker("collectives");
        Assert.True(code == 0, output);
        Assert.Contains("rank 0 of 1: collectives ok", output);
    }

    [Fact]
    public void A_library_that_is_not_open_mpi_is_refused_with_the_reason()
    {
        var (code, output) = RunWorker("collectives", new()
        {
            ["OMPI_COMM_WORLD_SIZE"] = "1",
            ["NR_MPI_LIBRARY"] = "libc.so.6"
        });
        Assert.NotEqual(0, code);
        Assert.Contains("libc.so.6 is not Open MPI", output);
        Assert.Contains("openmpi-bin", output);
        Assert.DoesNotContain("   at ", output);
    }

    internal static (int Code, string Output) RunWorker(string scenario, Dictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        info.ArgumentList.Add(MpiRun.WorkerDll);
        info.ArgumentList.Add(scenario);
        foreach (var k in new[] { "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE" }) info.Environment.Remove(k);
        if (environment != null)
            foreach (var (k, v) in environment) info.Environment[k] = v;
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }
}
