using NativeReasoner.Distributed;

namespace NativeReasoner.DistributedWorker;

/// <summary>A rank that stops answering: the others must end the job with a clear error, not wait forever.</summary>
internal static class FaultScenarios
{
    /// <summary>The last rank sleeps instead of joining the all-reduce; the others time out
    /// (NR_COLLECTIVE_TIMEOUT_S).</summary>
    public static List<string> Hang(IProcessGroup g)
    {
        using var t = Tensor.Ones(4);
        if (g.Rank == g.Size - 1) Thread.Sleep(TimeSpan.FromMinutes(10));
        g.AllReduce(t);
        return ["the all-reduce completed although a rank never joined it"];
    }

    /// <summary>The last rank is killed (SIGKILL) before the all-reduce; mpirun must end the others.</summary>
    public static List<string> Die(IProcessGroup g)
    {
        using var t = Tensor.Ones(4);
        if (g.Rank == g.Size - 1) System.Diagnostics.Process.GetCurrentProcess().Kill();
        g.AllReduce(t);
        return ["the all-reduce completed although a rank died"];
    }
}
