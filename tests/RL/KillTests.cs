using System.Diagnostics;
using NativeReasoner.RL;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.RL;

/// <summary>
/// The SIGKILL harness: `nr train` on a tiny deterministic configuration, run as a separate process, killed at random
/// moments (a checkpoint is written after every step, so many kills land inside a write) and rerun until it
/// finishes. The CI form kills 3 times; <c>scripts/kill-test.sh</c> sets <c>NR_KILL_TEST_KILLS</c> for the long form.
/// </summary>
public class KillTests(ITestOutputHelper output)
{
    private static readonly string[] TinyRun =
    [
        "train", "--name", "kill", "--model-preset", "tiny", "--pretrain-steps", "8", "--pretrain-batch", "4",
        "--heldout-problems", "5", "--steps", "10", "--num-generations", "2", "--prompts-per-step", "2",
        "--max-completion-length", "6", "--eval-steps", "2", "--eval-problems", "3", "--checkpoint-every-minutes", "0",
    ];

    /// <summary>
    /// FirstOutput: when the run printed its first character (startup done, training under way), or its first line
    /// that starts with a marker given to <see cref="RunNr(IEnumerable{string}, TimeSpan?, string[]?, int)"/>.
    /// </summary>
    internal sealed record Outcome(int ExitCode, string Output, bool Killed, TimeSpan Elapsed, TimeSpan FirstOutput);

    /// <summary>Runs `nr train` on the tiny configuration.</summary>
    private static Outcome RunNr(string runs, TimeSpan? killAfter) =>
        RunNr([.. TinyRun, "--runs-dir", runs], killAfter);

    /// <summary>
    /// Runs `nr` with <paramref name="args"/>; kills it with SIGKILL <paramref name="killAfter"/> after its first
    /// output (so the kill lands in the run's work, not in the runtime's startup) if given — or, with
    /// <paramref name="startMarkers"/>, after its <paramref name="markerCount"/>-th line that starts with one of them.
    /// </summary>
    internal static Outcome RunNr(IEnumerable<string> args, TimeSpan? killAfter, string[]? startMarkers = null,
        int markerCount = 1)
    {
        var nr = Path.Combine(AppContext.BaseDirectory, "nr.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(nr);
        foreach (var a in args) start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var started = new ManualResetEventSlim();
        var firstOutput = TimeSpan.Zero;
        var stdout = Task.Run(() =>
        {
            var text = new System.Text.StringBuilder();
            int c, lineStart = 0, markersSeen = 0;
            while ((c = process.StandardOutput.Read()) >= 0)
            {
                text.Append((char)c);
                if (started.IsSet) continue;
                if (startMarkers == null) { firstOutput = clock.Elapsed; started.Set(); }
                else if (c == '\n')
                {
                    var line = text.ToString(lineStart, text.Length - lineStart);
                    lineStart = text.Length;
                    bool marker = startMarkers.Any(m => line.StartsWith(m, StringComparison.Ordinal));
                    if (marker && ++markersSeen == markerCount)
                    {
                        firstOutput = clock.Elapsed;
                        started.Set();
                    }
                }
            }
            started.Set();
            return text.ToString();
        });
        var stderr = process.StandardError.ReadToEndAsync();
        bool killed = false;
        if (killAfter is { } delay && started.Wait(TimeSpan.FromMinutes(5)) && !process.WaitForExit(delay))
        {
            // Process.Kill sends SIGKILL on Unix: no handler runs, as with an OOM kill or a power cut.
            process.Kill();
            killed = true;
        }
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill();
            throw new TimeoutException("nr " + string.Join(" ", args) + " hung");
        }
        process.WaitForExit();
        return new Outcome(process.ExitCode, stdout.Result + stderr.Result, killed, clock.Elapsed, firstOutput);
    }

    [Fact]
    public void KilledAtRandomMoments_FinishesWithTheUninterruptedWeights()
    {
        int kills = int.TryParse(Environment.GetEnvironmentVariable("NR_KILL_TEST_KILLS"), out var k) ? k : 3;
        var root = Path.Combine(Path.GetTempPath(), "nr-kill-" + Guid.NewGuid().ToString("N"));
        var runsA = Path.Combine(root, "whole");
        var runsB = Path.Combine(root, "killed");
        try
        {
            var whole = RunNr(runsA, null);
            Assert.True(whole.ExitCode == 0, whole.Output);
            var dirA = Path.Combine(runsA, "kill");
            var dirB = Path.Combine(runsB, "kill");
            var random = new Random(20);
            int landed = 0, duringWrite = 0, runsNeeded = 0;
            var outputs = new List<string>();
            var delays = new List<double>();
            // Kill within a share of a whole run's work (startup excluded) that shrinks with the number of kills:
            // each killed run gets a little further, so the kills fall in every part of the run before it finishes.
            double span = (whole.Elapsed - whole.FirstOutput).TotalSeconds;
            while (landed < kills)
            {
                var delay = TimeSpan.FromSeconds(random.NextDouble() * span * 1.2 / kills);
                var r = RunNr(runsB, delay);
                runsNeeded++;
                outputs.Add(r.Output);
                Assert.True(runsNeeded < 4 * kills + 10, "the kills never let the run finish");
                if (!r.Killed)
                {
                    Assert.True(r.ExitCode == 0, r.Output);
                    break; // finished before its kill: done early
                }
                landed++;
                delays.Add(delay.TotalSeconds);
                var store = Path.Combine(dirB, RunCheckpoints.FolderName);
                if (Directory.Exists(store) && Directory.GetDirectories(store, ".tmp-*").Length > 0) duringWrite++;
            }
            // Rerun until done (a finished run's rerun only shows its summary).
            var last = RunNr(runsB, null);
            runsNeeded++;
            outputs.Add(last.Output);
            Assert.True(last.ExitCode == 0, last.Output);
            Assert.True(File.Exists(Path.Combine(dirB, "summary.json")));

            // Every checkpoint a rerun found was either resumed from or ignored with a message.
            var ignored = outputs.SelectMany(o => o.Split('\n')).Where(l => l.StartsWith("ignoring")).ToList();
            int unfinishedReported = ignored.Count(l => l.Contains("did not finish"));
            Assert.True(unfinishedReported >= duringWrite,
                $"{duringWrite} kills left a temp checkpoint, {unfinishedReported} reported");
            Assert.DoesNotContain(outputs, o => o.Contains("Unhandled exception"));
            CrashSafeTrainTests.AssertGaplessMonotone(dirB, 8, 10);
            Assert.Equal(CrashSafeTrainTests.MetricsWithoutClock(dirA), CrashSafeTrainTests.MetricsWithoutClock(dirB));
            var a = CrashSafeTrainTests.ModelFiles(dirA);
            var b = CrashSafeTrainTests.ModelFiles(dirB);
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), name + " differs");
            var resumes = outputs.Count(o => o.Contains("resuming from"));
            var at = string.Join(", ", delays.Select(d => d.ToString("F2")));
            output.WriteLine($"kill test: {landed} SIGKILLs (at {at} s after the first output; uninterrupted run " +
                             $"{span:F1} s from its first output), {duringWrite} during a checkpoint write, " +
                             $"{runsNeeded} runs, {resumes} resumes, {ignored.Count} ignored-checkpoint messages; " +
                             "final weights and metrics equal the uninterrupted run's");
            foreach (var l in ignored) output.WriteLine("  " + l.Trim());
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
