using System.Globalization;
using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Fuzz;

/// <summary>
/// Every reader of <see cref="ReaderFuzzTargets"/>: its committed corpus replays cleanly, and a bounded mutation run
/// finds no crash: in <c>dotnet test</c> a fixed seed (printed; <c>NR_FUZZ_SEED</c> picks another) and input count,
/// the same inputs every run. The long form sets <c>NR_FUZZ_SECONDS</c> (fresh random inputs for that long),
/// <c>NR_FUZZ_CRASH_DIR</c> to a folder that receives the crashing inputs (then committed under
/// <c>tests/fixtures/fuzz/NAME/</c>) and <c>NR_FUZZ_RECORD</c> to a Markdown file that gets one row per reader.
/// </summary>
public sealed class ReaderFuzzTests(ITestOutputHelper output)
{
    public static TheoryData<string> Targets() => new(ReaderFuzzTargets.All.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(Targets))]
    public void Seeds_AreReadWithoutError(string name)
    {
        var t = ReaderFuzzTargets.Get(name);
        var seeds = ReaderFuzzer.Seeds(t);
        Assert.NotEmpty(seeds);
        var work = ReaderFuzzer.NewWorkDirectory(t);
        try
        {
            foreach (var (file, bytes) in seeds)
            {
                var result = ReaderFuzzer.Check(t, work, bytes);
                Assert.True(result == null, $"{name}/{file}: the seed is refused ({result}); seeds must be valid");
            }
        }
        finally { Directory.Delete(work, true); }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Crashers_GiveOnlyDocumentedErrors(string name)
    {
        var t = ReaderFuzzTargets.Get(name);
        var work = ReaderFuzzer.NewWorkDirectory(t);
        try
        {
            // Each crash-* file once broke the reader; Check throws FuzzCrash if one still does.
            foreach (var (file, bytes) in ReaderFuzzer.Corpus(t, "crash-"))
                output.WriteLine($"{file}: {ReaderFuzzer.Check(t, work, bytes) ?? "accepted"}");
        }
        finally { Directory.Delete(work, true); }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Mutations_GiveOnlyDocumentedErrors(string name)
    {
        var t = ReaderFuzzTargets.Get(name);
        // In `dotnet test`: a fixed seed and count, so the run is the same every time; NR_FUZZ_SECONDS switches to
        // the long form (fresh random inputs for that long).
        bool timed = int.TryParse(Environment.GetEnvironmentVariable("NR_FUZZ_SECONDS"), out var seconds);
        int seed = int.TryParse(Environment.GetEnvironmentVariable("NR_FUZZ_SEED"), out var s) ? s : FixedSeed;
        if (!timed) output.WriteLine($"{name}: seed {seed}, {FixedIterations} inputs (NR_FUZZ_SEED to change)");
        var outcome = timed ? ReaderFuzzer.Fuzz(t, seconds) : ReaderFuzzer.Fuzz(t, seed, FixedIterations);
        var documented = string.Join(", ", outcome.Documented.OrderByDescending(kv => kv.Value)
            .Select(kv => $"{kv.Key} {kv.Value}"));
        output.WriteLine($"{name}: {outcome.Inputs} inputs in {outcome.Seconds:F1} s: {outcome.Accepted} accepted, " +
                         $"documented errors: {(documented.Length == 0 ? "none" : documented)}, " +
                         $"crashes: {outcome.Crashes.Count}");
        var saved = Environment.GetEnvironmentVariable("NR_FUZZ_CRASH_DIR") is { Length: > 0 } crashDir
            ? ReaderFuzzer.SaveCrashes(outcome, t, Path.Combine(crashDir, t.Name)) : [];
        if (Environment.GetEnvironmentVariable("NR_FUZZ_RECORD") is { Length: > 0 } record)
            lock (RecordLock)
                File.AppendAllText(record, string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {outcome.Seconds:F0} | {outcome.Inputs} | {outcome.Accepted} | " +
                    $"{(documented.Length == 0 ? "none" : documented)} | {outcome.Crashes.Count} | " +
                    $"{string.Join("<br>", outcome.Crashes.Values.Select(c => c.Message.Replace("|", "\\|")))} |\n"));
        Assert.True(outcome.Crashes.Count == 0, new StringBuilder()
            .AppendLine($"{name}: {outcome.Crashes.Count} crash(es) in {outcome.Inputs} inputs")
            .AppendJoin('\n', outcome.Crashes.Values.Select(c =>
                $"{c.Message}\n  input {ReaderFuzzer.Describe(c.Input)}"))
            .AppendLine().Append(saved.Count > 0 ? $"saved: {string.Join(", ", saved)}" : "")
            .ToString());
        Assert.True(outcome.Inputs > 0, $"{name}: no input was tried");
    }

    private static readonly Lock RecordLock = new();

    /// <summary>The in-test run: seed and input count (about the inputs three seconds used to try).</summary>
    private const int FixedSeed = 20261207, FixedIterations = 250;
}
