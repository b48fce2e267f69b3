using NativeReasoner.RL;
using NativeReasoner.Tests.RL;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Reliability;

/// <summary>
/// The SIGKILL harness for `nr pipeline r1` (every stage: cold-start SFT, GRPO, rejection sampling + SFT, GRPO), run as
/// a separate process with a checkpoint after every step, killed at random moments and rerun until it finishes; the
/// result must equal an uninterrupted run's. The CI form kills 3 times; <c>scripts/kill-test.sh</c> sets
/// <c>NR_KILL_TEST_KILLS</c> for the long form.
/// </summary>
public class PipelineKillTests(ITestOutputHelper output)
{
    /// <summary>
    /// The lines that mark progress: a stage starts, a GRPO step or an SFT epoch ends. A rerun repeats its startup and
    /// the base model's evaluation, so a kill timed from the start could land there every time; timed from the n-th
    /// progress line of the rerun it lands further on each time, in a step, a checkpoint write, a stage's rejection
    /// sampling, evaluation or save.
    /// </summary>
    private static readonly string[] Progress = ["== ", "step ", "SFT epoch"];

    private static string[] R1Args(string model, string run, string config) =>
        ["pipeline", "r1", "--model", model, "--run-dir", run, "--config", config, "--checkpoint-every-minutes", "0"];

    private static int ResumesIn(List<string> outputs) =>
        outputs.Sum(o => o.Split('\n').Count(l => l.StartsWith("resuming from")));

    [Fact]
    public void R1KilledAtRandomMoments_FinishesWithTheUninterruptedWeights()
    {
        int kills = int.TryParse(Environment.GetEnvironmentVariable("NR_KILL_TEST_KILLS"), out var k) ? k : 3;
        var root = CrashSafePipelineTests.TempDir();
        try
        {
            var model = CrashSafePipelineTests.TinyModelDir(root);
            var config = Path.Combine(root, "toy.json");
            File.WriteAllText(config, CrashSafePipelineTests.ToyConfig);
            var runA = Path.Combine(root, "whole");
            var runB = Path.Combine(root, "killed");
            var whole = KillTests.RunNr(R1Args(model, runA, config), null);
            Assert.True(whole.ExitCode == 0, whole.Output);

            var random = new Random(21);
            int landed = 0, runsNeeded = 0;
            // Temp checkpoints left by kills, by path: a rerun killed again before it reaches that stage leaves the
            // same one behind, and it is reported once, when a rerun finally finds it.
            var leftTemps = new HashSet<string>(StringComparer.Ordinal);
            var outputs = new List<string>();
            var delays = new List<double>();
            while (landed < kills)
            {
                // After 1 or 2 progress lines, within the next 5 % of an uninterrupted run's time (at most 0.6 s):
                // scaled to the machine's speed, so a fast machine, where the toy run takes about 2 s, still gets
                // its kills in before the run ends.
                int after = random.Next(1, 3);
                var window = Math.Min(0.6, 0.05 * whole.Elapsed.TotalSeconds);
                var delay = TimeSpan.FromSeconds(random.NextDouble() * window);
                var r = KillTests.RunNr(R1Args(model, runB, config), delay, Progress, after);
                runsNeeded++;
                outputs.Add(r.Output);
                Assert.True(runsNeeded < 4 * kills + 10, "the kills never let the run finish");
                if (!r.Killed)
                {
                    Assert.True(r.ExitCode == 0, r.Output);
                    break;
                }
                landed++;
                delays.Add(after + delay.TotalSeconds);
                var stores = R1Run.StageNames.Select(s => Path.Combine(runB, s, RunCheckpoints.FolderName));
                foreach (var d in stores.Where(Directory.Exists))
                    leftTemps.UnionWith(Directory.GetDirectories(d, ".tmp-*"));
            }
            Assert.True(landed >= Math.Min(kills, 2), $"only {landed} of {kills} kills landed before the run finished");
            Assert.True(ResumesIn(outputs) > 0, "no rerun resumed from a checkpoint: the kills came too early");
            var last = KillTests.RunNr(R1Args(model, runB, config), null);
            runsNeeded++;
            outputs.Add(last.Output);
            Assert.True(last.ExitCode == 0, last.Output);
            Assert.True(File.Exists(Path.Combine(runB, "summary.json")));

            var ignored = outputs.SelectMany(o => o.Split('\n')).Where(l => l.StartsWith("ignoring")).ToList();
            int unfinishedReported = ignored.Count(l => l.Contains("did not finish"));
            int duringWrite = leftTemps.Count;
            Assert.True(unfinishedReported >= duringWrite,
                $"{duringWrite} kills left a temp checkpoint, {unfinishedReported} reported");
            Assert.DoesNotContain(outputs, o => o.Contains("Unhandled exception"));
            CrashSafePipelineTests.AssertGaplessMonotone(runB);
            Assert.Equal(CrashSafePipelineTests.StageMetrics(runA), CrashSafePipelineTests.StageMetrics(runB));
            CrashSafePipelineTests.AssertSameWeights(Path.Combine(runA, "model"), Path.Combine(runB, "model"));
            int resumes = ResumesIn(outputs);
            int skipped = outputs.Sum(o => o.Split('\n').Count(l => l.Contains("already done")));
            var at = string.Join(", ", delays.Select(d => d.ToString("F2")));
            output.WriteLine($"pipeline kill test: {landed} SIGKILLs (at N.s = s seconds after the N-th progress " +
                             "line: " +
                             $"{at}; uninterrupted run {whole.Elapsed.TotalSeconds:F1} s), {duringWrite} during a " +
                             "checkpoint write, " +
                             $"{runsNeeded} runs, {resumes} loop resumes, {skipped} finished stages skipped, " +
                             $"{ignored.Count} ignored-checkpoint messages; final weights and metrics equal the " +
                             "uninterrupted run's");
            foreach (var l in ignored) output.WriteLine("  " + l.Trim());
        }
        finally { Directory.Delete(root, true); }
    }
}
