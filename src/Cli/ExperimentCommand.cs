using System.CommandLine;
using System.Globalization;
using NativeReasoner.RL;
using NativeReasoner.RL.Experiments;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr experiment NAME`: controls and ablations over seeds (<see cref="ExperimentRunner"/>); writes
/// RUNS/experiments/NAME/ and resumes arm by arm when run again.
/// </summary>
public static class ExperimentCommand
{
    public static Command Build()
    {
        var name = new Argument<string>("name")
        {
            Description = "The experiment: " + string.Join(", ", ExperimentCatalog.Names) + ".",
        };
        // Also what makes a mistyped option (taken for the name) a usage error rather than an unknown experiment.
        name.AcceptOnlyFromAmong([.. ExperimentCatalog.Names]);
        var seeds = new Option<string>("--seeds")
        {
            Description = "Comma-separated seeds; each pre-trains once and runs every arm.",
            DefaultValueFactory = _ => "0,1,2",
        };
        var scale = new Option<string>("--scale")
        {
            Description = "Budgets: " + string.Join(", ", ExperimentScale.Names) + " (small: one experiment × 3 " +
                          "seeds well under an hour on an idle 2-core machine; full: nr train's budgets).",
            DefaultValueFactory = _ => "small",
        };
        var runs = new Option<string>("--runs-dir")
        {
            Description = "Where runs are written (the experiment goes to RUNS/experiments/NAME).",
            DefaultValueFactory = _ => "runs",
        };
        var command = new Command("experiment",
            "Run a named experiment (controls, objectives, distill): arms from one pre-trained checkpoint per seed, " +
            "the same compute and evaluation for each, mean ± std over seeds; writes runs/experiments/NAME/.")
            { name, seeds, scale, runs };
        command.SetAction(parse =>
        {
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                if (cts.IsCancellationRequested) return;
                e.Cancel = true;
                cts.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                var settings = new ExperimentSettings
                {
                    Experiment = ExperimentCatalog.Get(parse.GetValue(name)!),
                    Scale = ExperimentScale.Get(parse.GetValue(scale)!),
                    Seeds = ParseSeeds(parse.GetValue(seeds)!),
                    RunsDirectory = parse.GetValue(runs)!,
                };
                var results = ExperimentRunner.Run(settings, Console.Write, cts.Token);
                if (results["interrupted"] is null)
                {
                    Console.WriteLine(File.ReadAllText(Path.Combine(settings.Directory, "results.md")));
                    Console.WriteLine($"written: {Path.Combine(settings.Directory, "results.json")}, report.html");
                }
                return cts.IsCancellationRequested ? 130 : 0;
            }
            catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException
                                      or InvalidDataException)
            {
                Console.Error.WriteLine($"nr experiment: {e.Message}");
                return 1;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        });
        return command;
    }

    /// <summary>"0,1,2" → [0, 1, 2]; anything else is an error naming --seeds.</summary>
    public static IReadOnlyList<ulong> ParseSeeds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var seeds = new List<ulong>();
        foreach (var p in parts)
        {
            if (!ulong.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var seed))
                throw new ArgumentException($"--seeds expects comma-separated non-negative integers such as 0,1,2, " +
                                            $"got '{text}'");
            seeds.Add(seed);
        }
        return seeds;
    }
}
