// Property-based mutation fuzzing of the readers with CsCheck: an input is a committed seed changed by a short
// sequence of mutations (FuzzMutation), which CsCheck generates and, on a failure, shrinks to the fewest and simplest
// mutations that still fail.
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using CsCheck;

namespace NativeReasoner.Tests.Fuzz;

/// <summary>A failure of a reader on one input: an undocumented exception, a message without the file, a hang.
/// </summary>
public sealed class FuzzCrash(string signature, string example, byte[] input, Exception? inner = null)
    : Exception($"{signature} ({example})", inner)
{
    /// <summary>What went wrong and where (the exception type and the engine's method that let it through), without
    /// the input: equal for the same bug.</summary>
    public string Signature { get; } = signature;

    public byte[] Input { get; } = input;
}

/// <summary>What one fuzzing run of a target saw.</summary>
public sealed record FuzzOutcome(string Target, long Inputs, long Accepted,
    IReadOnlyDictionary<string, long> Documented, IReadOnlyDictionary<string, FuzzCrash> Crashes, double Seconds);

public static class ReaderFuzzer
{
    /// <summary>The longest a reader may take over one input before it counts as hung.</summary>
    public static readonly TimeSpan InputTimeLimit = TimeSpan.FromSeconds(20);

    /// <summary>Inputs are capped at this size so one mutation chain cannot grow without bound.</summary>
    private const int MaxInputBytes = 1 << 20;

    public static string CorpusDirectory(ReaderFuzzTarget t) =>
        Path.Combine(AppContext.BaseDirectory, "fixtures", "fuzz", t.Name);

    /// <summary>The committed files of the target's corpus with the given prefix (<c>seed-</c>, <c>crash-</c>).
    /// </summary>
    public static IReadOnlyList<(string Name, byte[] Bytes)> Corpus(ReaderFuzzTarget t, string prefix)
    {
        var dir = CorpusDirectory(t);
        if (!Directory.Exists(dir)) return [];
        return Directory.GetFiles(dir, prefix + "*").Order(StringComparer.Ordinal)
            .Select(f => (Path.GetFileName(f), File.ReadAllBytes(f))).ToArray();
    }

    /// <summary>Every seed of the target: committed <c>seed-*</c> files and generated ones.</summary>
    public static IReadOnlyList<(string Name, byte[] Bytes)> Seeds(ReaderFuzzTarget t) =>
        [.. Corpus(t, "seed-"), .. (t.GeneratedSeeds?.Invoke() ?? []).Select((b, i) => ($"generated-{i}", b))];

    /// <summary>A fresh work directory with the target's fixed files written.</summary>
    public static string NewWorkDirectory(ReaderFuzzTarget t)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"nr-fuzz-{t.Name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        t.Setup?.Invoke(dir);
        return dir;
    }

    /// <summary>
    /// Reads one input. Returns null when the reader accepted it, "TYPE: MESSAGE" of the exception when it failed in
    /// the documented way; throws <see cref="FuzzCrash"/> otherwise.
    /// </summary>
    public static string? Check(ReaderFuzzTarget t, string workDir, byte[] input)
    {
        File.WriteAllBytes(Path.Combine(workDir, t.FileName), input);
        Exception? thrown = null;
        var run = Task.Run(() =>
        {
            try { t.Read(workDir); }
            catch (Exception e) { thrown = e; }
        });
        if (!run.Wait(InputTimeLimit))
            throw new FuzzCrash($"{t.Name}: no result within {InputTimeLimit.TotalSeconds} s", "a hang", input);
        if (thrown == null) return null;
        string file = Path.GetFileName(t.FileName);
        if (t.IsDocumented(thrown) && thrown.Message.Contains(file, StringComparison.Ordinal))
            return $"{thrown.GetType().Name}: {thrown.Message}";
        string why = t.IsDocumented(thrown) ? $"message does not name {file}" : "undocumented exception";
        throw new FuzzCrash($"{t.Name}: {why}: {thrown.GetType().Name} at {TopFrame(thrown)}",
            FirstLine(thrown.Message.Replace(workDir, "WORKDIR")), input, thrown);
    }

    /// <summary>
    /// Fuzzes <paramref name="t"/> for <paramref name="seconds"/> with fresh random inputs (CsCheck): the long form, for
    /// perf/ and scripts. Mutation chains of one to six mutations over its seeds. Crashes are returned (the smallest
    /// input of each signature), not thrown, so a long run records all.
    /// </summary>
    public static FuzzOutcome Fuzz(ReaderFuzzTarget t, int seconds) => Run(t, (seeds, attempt) =>
    {
        var mutation = Gen.Select(Gen.Int[0, FuzzMutation.KindCount - 1], Gen.UInt, Gen.UInt, Gen.UInt)
            .Select(m => new FuzzMutation(m.Item1, m.Item2, m.Item3, m.Item4));
        var cases = Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int[0, seeds.Length - 1], mutation.Array[1, 6]);
        cases.Sample((seed, other, mutations) => attempt(seed, other, mutations), time: seconds, threads: 1,
            print: c => Describe(Mutate(seeds[c.Item1], seeds[c.Item2], c.Item3)));
    });

    /// <summary>
    /// The same mutation chains drawn from <see cref="Random"/>(<paramref name="seed"/>): <paramref name="iterations"/>
    /// inputs, identical on every run, so a test that uses it cannot fail by chance.
    /// </summary>
    public static FuzzOutcome Fuzz(ReaderFuzzTarget t, int seed, int iterations) => Run(t, (seeds, attempt) =>
    {
        var rng = new Random(seed);
        uint Next() => (uint)rng.NextInt64(0, 1L << 32);
        for (int i = 0; i < iterations; i++)
        {
            int first = rng.Next(seeds.Length), other = rng.Next(seeds.Length);
            var mutations = new FuzzMutation[rng.Next(1, 7)];
            for (int m = 0; m < mutations.Length; m++)
                mutations[m] = new FuzzMutation(rng.Next(FuzzMutation.KindCount), Next(), Next(), Next());
            try { attempt(first, other, mutations); }
            catch (FuzzCrash) { } // recorded in the outcome; the run goes on to find the others
        }
    });

    private static FuzzOutcome Run(ReaderFuzzTarget t,
        Action<byte[][], Action<int, int, FuzzMutation[]>> drive)
    {
        var seeds = Seeds(t).Select(s => s.Bytes).ToArray();
        if (seeds.Length == 0) throw new InvalidOperationException($"fuzz target {t.Name} has no seeds");
        var work = NewWorkDirectory(t);
        long inputs = 0, accepted = 0;
        var documented = new ConcurrentDictionary<string, long>();
        var crashes = new ConcurrentDictionary<string, FuzzCrash>();
        var started = DateTime.UtcNow;
        try
        {
            drive(seeds, (seed, other, mutations) =>
            {
                byte[] input = Mutate(seeds[seed], seeds[other], mutations);
                Interlocked.Increment(ref inputs);
                try
                {
                    var result = Check(t, work, input);
                    if (result == null) Interlocked.Increment(ref accepted);
                    else documented.AddOrUpdate(result[..result.IndexOf(':')], 1, (_, n) => n + 1);
                }
                catch (FuzzCrash c)
                {
                    crashes.AddOrUpdate(c.Signature, c, (_, old) => c.Input.Length < old.Input.Length ? c : old);
                    throw;
                }
            });
        }
        catch (CsCheckException) when (!crashes.IsEmpty)
        {
            // Reported through the outcome's crashes.
        }
        finally
        {
            try { Directory.Delete(work, true); }
            catch (IOException) { } // a hung reader may still hold it
        }
        return new FuzzOutcome(t.Name, inputs, accepted, documented.ToDictionary(), crashes.ToDictionary(),
            (DateTime.UtcNow - started).TotalSeconds);
    }

    public static byte[] Mutate(byte[] seed, byte[] other, FuzzMutation[] mutations)
    {
        byte[] input = seed;
        foreach (var m in mutations)
        {
            input = m.Apply(input, other);
            if (input.Length > MaxInputBytes) input = input[..MaxInputBytes];
        }
        return input;
    }

    /// <summary>Writes each crash input into <paramref name="directory"/> as <c>crash-HASH.EXT</c>; returns the
    /// names.</summary>
    public static IReadOnlyList<string> SaveCrashes(FuzzOutcome outcome, ReaderFuzzTarget t, string directory)
    {
        Directory.CreateDirectory(directory);
        var names = new List<string>();
        foreach (var input in outcome.Crashes.Values.Select(c => c.Input))
        {
            var name = $"crash-{Convert.ToHexStringLower(SHA256.HashData(input))[..12]}{Path.GetExtension(t.FileName)}";
            File.WriteAllBytes(Path.Combine(directory, name), input);
            names.Add(name);
        }
        return names;
    }

    /// <summary>The input as text for a failure message: its start, escaped, with its length.</summary>
    public static string Describe(byte[] input)
    {
        var text = Encoding.UTF8.GetString(input, 0, Math.Min(input.Length, 300));
        var escaped = new StringBuilder();
        foreach (char ch in text) escaped.Append(char.IsControl(ch) ? $"\\u{(int)ch:x4}" : ch.ToString());
        return $"{input.Length} bytes: {escaped}{(input.Length > 300 ? "…" : "")}";
    }

    private static string FirstLine(string s)
    {
        int nl = s.IndexOf('\n');
        var line = nl < 0 ? s : s[..nl];
        return line.Length <= 160 ? line : line[..160] + "…";
    }

    /// <summary>The innermost frame of the engine's code the exception passed (the reader that let it through), for
    /// the crash signature.</summary>
    private static string TopFrame(Exception e)
    {
        var methods = new System.Diagnostics.StackTrace(e, false).GetFrames()
            .Select(f => f.GetMethod()).Where(m => m != null).ToArray();
        var m = methods.FirstOrDefault(m => m!.DeclaringType?.Namespace is { } ns && ns.StartsWith("NativeReasoner")
                                            && !ns.StartsWith("NativeReasoner.Tests")) ?? methods.FirstOrDefault();
        return m == null ? "(unknown)" : $"{m.DeclaringType?.Name}.{m.Name}";
    }
}
