using System.Diagnostics;
using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// Starts a program under Open MPI's mpirun on this machine only (loopback, shared memory), bounded in time, and
/// collects its output. The tests that use it skip, saying why, where mpirun is not installed.
/// </summary>
public static class MpiRun
{
    /// <summary>mpirun's path, or null (with the reason) when Open MPI's launcher is not on PATH.</summary>
    public static string? Launcher(out string reason)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':',
            StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, "mpirun");
            if (File.Exists(path))
            {
                reason = "";
                return path;
            }
        }
        reason = "mpirun is not on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev)";
        return null;
    }

    public static string WorkerDll => Path.Combine(AppContext.BaseDirectory, "nr-distributed-worker.dll");

    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "nr.dll");

    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed, bool TimedOut);

    /// <summary>
    /// mpirun -np <paramref name="ranks"/> dotnet <paramref name="arguments"/>; killed (all its processes) after
    /// <paramref name="limit"/>. <paramref name="started"/> sees mpirun's process once it runs.
    /// </summary>
    public static Result Start(int ranks, IEnumerable<string> arguments, TimeSpan limit,
        IReadOnlyDictionary<string, string>? environment = null, Action<Process>? started = null)
    {
        var mpirun = Launcher(out var reason) ?? throw new InvalidOperationException(reason);
        var info = new ProcessStartInfo(mpirun)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        // Root in containers, more ranks than cores, this host only: shared memory between ranks, loopback for
        // the launcher; no single-copy (CMA) transfers, which ptrace restrictions in containers forbid.
        foreach (var a in new[] { "--oversubscribe", "--allow-run-as-root", "-np", ranks.ToString(),
                     "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo", "--bind-to", "none",
                     "dotnet" })
            info.ArgumentList.Add(a);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        info.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
        info.Environment["OMPI_MCA_rmaps_base_oversubscribe"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        if (environment != null)
            foreach (var (k, v) in environment)
            {
                info.Environment[k] = v;
                // mpirun passes only the variables it is told to the ranks (-x), beyond its own OMPI_ ones.
                info.ArgumentList.Insert(0, k);
                info.ArgumentList.Insert(0, "-x");
            }
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        started?.Invoke(p);
        bool timedOut = !p.WaitForExit(limit);
        if (timedOut) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        lock (output) return new Result(timedOut ? -1 : p.ExitCode, output.ToString(), clock.Elapsed, timedOut);
    }

    /// <summary>The ranks mpirun started (its child processes), with the rank of each from its environment.</summary>
    public static Dictionary<int, int> RankProcesses(Process mpirun)
    {
        var ranks = new Dictionary<int, int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1]) != mpirun.Id) continue;
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                var rank = env.FirstOrDefault(e => e.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal));
                if (rank != null) ranks[int.Parse(rank.Split('=')[1])] = pid;
            }
            catch (IOException)
            {
                // the process ended while it was read
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return ranks;
    }
}

/// <summary>A theory that runs only where Open MPI's mpirun is installed; else skipped, saying why.</summary>
public sealed class MpiTheoryAttribute : TheoryAttribute
{
    public MpiTheoryAttribute()
    {
        if (MpiRun.Launcher(out var reason) == null) Skip = reason;
    }
}

/// <summary>A fact that runs only where Open MPI's mpirun is installed; else skipped, saying why.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (MpiRun.Launcher(out var reason) == null) Skip = reason;
    }
}
