using System.Diagnostics;
using System.Text.Json.Nodes;
using NativeReasoner.RL;
using NativeReasoner.Tests.Reliability;
using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// `mpirun -np 2 nr pipeline r1` on a tiny DeepSeek-V3 (every stage distributed: cold-start SFT data-parallel,
/// GRPO with its rollouts spread, rejection sampling split and gathered, SFT, GRPO): one run directory, written by
/// rank 0 alone, with what one process writes (losses, rewards, kept samples, held-out results); and a run whose
/// rank 1 is killed after a GRPO checkpoint resumes from it on both ranks and finishes.
/// </summary>
public class DistributedPipelineTests
{
    /// <summary>The crash-safety toy settings with a GRPO batch two ranks can share and a frozen reference.</summary>
    private const string Config = """
        {"task": "arithmetic", "steps": 3, "steps_2": 2, "num_generations": 2, "prompts_per_step": 2,
         "max_completion_length": 6, "eval_problems": 2, "eval_steps": 2, "cold_start_examples": 8,
         "sft_batch_size": 3, "sft_epochs": 2, "rejection_problems": 3, "rejection_samples": 2, "beta": 0.04}
        """;

    private static string[] R1(string model, string run, string config) =>
        [MpiRun.CliDll, "pipeline", "r1", "--model", model, "--run-dir", run, "--config", config,
         "--checkpoint-every-minutes", "0"];

    private static List<JsonObject> Metrics(string file) =>
        File.ReadAllLines(file).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    [MpiFact]
    public void Two_ranks_run_r1_into_one_directory_with_the_results_of_one_process()
    {
        var root = CrashSafePipelineTests.TempDir();
        try
        {
            var model = CrashSafePipelineTests.TinyModelDir(root);
            var config = Path.Combine(root, "toy.json");
            File.WriteAllText(config, Config);
            string parallel = Path.Combine(root, "parallel"), single = Path.Combine(root, "single");
            var r = MpiRun.Start(2, R1(model, parallel, config), TimeSpan.FromMinutes(5));
            Assert.False(r.TimedOut, r.Output);
            Assert.True(r.ExitCode == 0, r.Output);
            // Rank 0 alone reports: each stage is announced once.
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(r.Output, "== 2_grpo"));
            Assert.True(File.Exists(Path.Combine(parallel, "summary.json")));
            foreach (var stage in R1Run.StageNames)
            {
                Assert.True(File.Exists(Path.Combine(parallel, stage, PipelineStages.StageFile)), stage);
                Assert.False(Directory.Exists(Path.Combine(parallel, stage, RunCheckpoints.FolderName)), stage);
            }

            var alone = RunAlone(R1(model, single, config).Skip(1));
            Assert.True(alone.ExitCode == 0, alone.Output);
            foreach (var stage in R1Run.StageNames)
            {
                // An SFT on no kept samples writes no log, over 2 ranks as in one process.
                bool logged = File.Exists(Path.Combine(single, stage, "metrics.jsonl"));
                Assert.Equal(logged, File.Exists(Path.Combine(parallel, stage, "metrics.jsonl")));
                if (!logged) continue;
                var a = Metrics(Path.Combine(single, stage, "metrics.jsonl"));
                var b = Metrics(Path.Combine(parallel, stage, "metrics.jsonl"));
                Assert.Equal(a.Count, b.Count);
                foreach (var key in new[] { "loss", "reward", "completions/mean_length", "frac_reward_zero_std" })
                    for (int i = 0; i < a.Count; i++)
                    {
                        if (a[i][key] is not JsonNode want) continue;
                        double w = want.GetValue<double>(), got = b[i][key]!.GetValue<double>();
                        Assert.True(Math.Abs(got - w) <= 1e-6 + 1e-4 * Math.Abs(w),
                            $"{stage} line {i + 1}: {key} {got} over 2 ranks, {w} in one process");
                    }
            }
            // Rejection sampling kept the same samples, in the same order.
            Assert.Equal(File.ReadAllText(Path.Combine(single, "3_rejection_sft", "rejection_samples.jsonl")),
                File.ReadAllText(Path.Combine(parallel, "3_rejection_sft", "rejection_samples.jsonl")));
            var sa = JsonNode.Parse(File.ReadAllText(Path.Combine(single, "summary.json")))!;
            var sb = JsonNode.Parse(File.ReadAllText(Path.Combine(parallel, "summary.json")))!;
            Assert.Equal(sa["after"]!["accuracy"]!.GetValue<double>(), sb["after"]!["accuracy"]!.GetValue<double>());

            // Run again: both ranks see the finished run.
            var again = MpiRun.Start(2, R1(model, parallel, config), TimeSpan.FromMinutes(2));
            Assert.True(again.ExitCode == 0, again.Output);
            Assert.Contains("is a finished run of this configuration", again.Output);
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [MpiFact]
    public void A_killed_rank_stops_r1_zero_and_both_ranks_resume_from_the_same_checkpoint()
    {
        var root = CrashSafePipelineTests.TempDir();
        try
        {
            var model = CrashSafePipelineTests.TinyModelDir(root);
            var config = Path.Combine(root, "toy.json");
            File.WriteAllText(config, """
                {"task": "arithmetic", "steps": 40, "num_generations": 2, "prompts_per_step": 2,
                 "max_completion_length": 6, "eval_problems": 2, "eval_steps": 2, "beta": 0.04}
                """);
            var run = Path.Combine(root, "run");
            string[] args = [MpiRun.CliDll, "pipeline", "r1-zero", "--model", model, "--run-dir", run,
                "--config", config,
                "--checkpoint-every-minutes", "0"];
            var folder = Path.Combine(run, RunCheckpoints.FolderName);
            bool killed = false;
            var r = MpiRun.Start(2, args, TimeSpan.FromMinutes(4), started: p =>
            {
                var clock = Stopwatch.StartNew();
                while (clock.Elapsed < TimeSpan.FromMinutes(3) && !p.HasExited &&
                       !(Directory.Exists(folder) && Directory.GetDirectories(folder, "ckpt-*").Length >= 2))
                    Thread.Sleep(100);
                if (!MpiRun.RankProcesses(p).TryGetValue(1, out int pid)) return;
                using var kill = Process.Start("kill", ["-KILL", pid.ToString()]);
                kill.WaitForExit();
                killed = true;
            });
            Assert.True(killed, "rank 1's process was not found under mpirun: " + r.Output);
            Assert.False(r.TimedOut, r.Output);
            Assert.NotEqual(0, r.ExitCode);
            var found = new RunCheckpoints(run, _ => { }).LoadNewest();
            Assert.NotNull(found);
            Assert.True(found!.Step > 0, "the checkpoint left behind is the initial one");
            Assert.False(File.Exists(Path.Combine(run, "summary.json")));

            var again = MpiRun.Start(2, args, TimeSpan.FromMinutes(5));
            Assert.False(again.TimedOut, again.Output);
            Assert.True(again.ExitCode == 0, again.Output);
            Assert.Contains("resuming from", again.Output);
            Assert.True(File.Exists(Path.Combine(run, "summary.json")));
            // Every step logged once, in order, after the resume cut the log back to the checkpoint.
            var steps = Metrics(Path.Combine(run, "metrics.jsonl")).Select(m => m["step"]!.GetValue<double>())
                .ToArray();
            Assert.Equal(Enumerable.Range(1, 40).Select(i => (double)i), steps);
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    private static MpiRun.Result RunAlone(IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(MpiRun.CliDll);
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
}
