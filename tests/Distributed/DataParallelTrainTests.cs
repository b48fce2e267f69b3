using System.Diagnostics;
using System.Text.Json.Nodes;
using NativeReasoner.RL;
using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// `mpirun -np N nr train` on the tiny configuration: one run directory written by rank 0 alone, pre-training
/// losses equal to one process over the whole batch, a killed or hung rank ending the job with a clear error and
/// a whole checkpoint, the rerun resuming from it, and a batch the ranks cannot share refused before any work.
/// </summary>
public class DataParallelTrainTests
{
    private static string[] TinyRun(string runs, int pretrainSteps = 8) =>
    [
        CliDll, "train", "--name", "dp", "--model-preset", "tiny", "--pretrain-steps", pretrainSteps.ToString(),
        "--pretrain-batch", "6", "--heldout-problems", "5", "--steps", "4", "--num-generations", "2",
        "--prompts-per-step", "2", "--max-completion-length", "6", "--eval-steps", "2", "--eval-problems", "3",
        "--checkpoint-every-minutes", "0", "--runs-dir", runs,
    ];

    private static string CliDll => MpiRun.CliDll;

    private static string NewRunsDirectory() => Path.Combine(Path.GetTempPath(), "nr-dp-"
        + Guid.NewGuid().ToString("N"));

    private static List<JsonObject> Metrics(string runs) =>
        File.ReadAllLines(Path.Combine(runs, "dp", "metrics.jsonl")).Select(l
            => JsonNode.Parse(l)!.AsObject()).ToList();

    [MpiFact]
    public void Two_ranks_train_end_to_end_with_the_losses_of_one_process()
    {
        string parallel = NewRunsDirectory(), single = NewRunsDirectory();
        try
        {
            var r = MpiRun.Start(2, TinyRun(parallel), TimeSpan.FromMinutes(5));
            Assert.False(r.TimedOut, r.Output);
            Assert.True(r.ExitCode == 0, r.Output);
            // One summary (rank 0's), one directory, each step logged once.
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(r.Output, "\"checks\""));
            Assert.True(File.Exists(Path.Combine(parallel, "dp", "summary.json")));
            Assert.Single(Directory.GetDirectories(parallel));
            var metrics = Metrics(parallel);
            Assert.Equal(8 + 4, metrics.Count);
            Assert.Equal(metrics.Count, metrics.Select(m => (m["phase"]!.GetValue<double>(),
                m["step"]!.GetValue<double>())).Distinct().Count());

            var one = RunAlone(TinyRun(single));
            Assert.True(one.ExitCode == 0, one.Output);
            var alone = Metrics(single).Where(m => m["phase"]!.GetValue<double>() == 0).Select(m
                => m["loss"]!.GetValue<double>()).ToArray();
            var split = metrics.Where(m => m["phase"]!.GetValue<double>() == 0).Select(m
                => m["loss"]!.GetValue<double>()).ToArray();
            Assert.Equal(alone.Length, split.Length);
            for (int i = 0; i < alone.Length; i++)
                Assert.True(Math.Abs(alone[i] - split[i]) <= 1e-4 * Math.Abs(alone[i]),
                    $"pre-training step {i + 1}: loss {split[i]} over 2 ranks, {alone[i]} in one process");
        }
        finally
        {
            Delete(parallel);
            Delete(single);
        }
    }

    [MpiFact]
    public void A_killed_rank_ends_the_job_and_the_rerun_resumes_from_the_last_checkpoint()
    {
        string runs = NewRunsDirectory();
        try
        {
            var r = MpiRun.Start(2, TinyRun(runs, pretrainSteps: 60), TimeSpan.FromMinutes(5), started: p
                => KillRankAfterACheckpoint(p, runs, "KILL"));
            Assert.False(r.TimedOut, r.Output);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("rank 1", r.Output); // mpirun: "process rank 1 … exited on signal 9"
            AssertResumes(runs);
        }
        finally
        {
            Delete(runs);
        }
    }

    [MpiFact]
    public void A_hung_rank_ends_the_job_after_the_timeout_and_the_rerun_resumes()
    {
        string runs = NewRunsDirectory();
        try
        {
            var r = MpiRun.Start(2, TinyRun(runs, pretrainSteps: 60), TimeSpan.FromMinutes(5),
                // Long enough that a loaded machine never trips it before the stop, short enough for a test.
                new Dictionary<string, string> { ["NR_COLLECTIVE_TIMEOUT_S"] = "15" },
                started: p => KillRankAfterACheckpoint(p, runs, "STOP"));
            Assert.False(r.TimedOut, r.Output);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("nr train: rank 0 of 2:", r.Output);
            Assert.Contains("did not complete within 15 s", r.Output);
            Assert.Contains("run the same command again to resume", r.Output);
            AssertResumes(runs);
        }
        finally
        {
            Delete(runs);
        }
    }

    [MpiFact]
    public void A_batch_the_ranks_cannot_share_is_refused_before_any_work()
    {
        string runs = NewRunsDirectory();
        try
        {
            var args = TinyRun(runs).ToArray();
            args[Array.IndexOf(args, "--pretrain-batch") + 1] = "4";
            var r = MpiRun.Start(3, args, TimeSpan.FromMinutes(2));
            Assert.False(r.TimedOut, r.Output);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("the pre-training batch of 4 does not divide over 3 ranks", r.Output);
            Assert.False(Directory.Exists(Path.Combine(runs, "dp")), "a run directory was created before the error");
        }
        finally
        {
            Delete(runs);
        }
    }

    /// <summary>Once a pre-training checkpoint is on disk, sends rank 1 SIGKILL or SIGSTOP.</summary>
    private static void KillRankAfterACheckpoint(Process mpirun, string runs, string signal)
    {
        var folder = Path.Combine(runs, "dp", RunCheckpoints.FolderName);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(3) && !mpirun.HasExited)
        {
            if (Directory.Exists(folder) && Directory.GetDirectories(folder, "ckpt-*").Length >= 2) break;
            Thread.Sleep(100);
        }
        var ranks = MpiRun.RankProcesses(mpirun);
        Assert.True(ranks.ContainsKey(1), "rank 1's process was not found under mpirun");
        using var kill = Process.Start("kill", ["-" + signal, ranks[1].ToString()]);
        kill.WaitForExit();
    }

    /// <summary>The checkpoint left behind is whole, and the same command resumes from it and finishes.</summary>
    private static void AssertResumes(string runs)
    {
        var found = new RunCheckpoints(Path.Combine(runs, "dp"), _ => { }).LoadNewest();
        Assert.NotNull(found);
        Assert.True(found!.Phase > 0 || found.Step > 0, "the checkpoint left behind is the initial one");
        var again = MpiRun.Start(2, TinyRun(runs, pretrainSteps: 60), TimeSpan.FromMinutes(8));
        Assert.False(again.TimedOut, again.Output);
        Assert.True(again.ExitCode == 0, again.Output);
        Assert.Contains($"resuming from", again.Output);
        Assert.True(File.Exists(Path.Combine(runs, "dp", "summary.json")));
    }

    private static MpiRun.Result RunAlone(IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        bool timedOut = !p.WaitForExit(TimeSpan.FromMinutes(5));
        if (timedOut) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        return new MpiRun.Result(timedOut ? -1 : p.ExitCode, stdout.Result + stderr.Result, clock.Elapsed, timedOut);
    }

    private static void Delete(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }
}
