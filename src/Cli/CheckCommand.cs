using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using NativeReasoner.Kernels.Verification;

namespace NativeReasoner.Cli;

/// <summary>
/// `nr check --device NAME [--filter S]... [--json]`: the kernel conformance suite
/// (<see cref="KernelChecks"/>) on one device, every check against the scalar reference on fresh random inputs.
/// One line per check (name, pass / FAIL / MISSING / "unsupported (fallback)", worst relative error, ms) and a
/// summary. "unsupported (fallback)": the backend lacks an optional op and the check verified the host fallback
/// that runs it instead (it counts as passed, but is not a kernel of the backend). Exit code 0 only
/// when at least one check ran and every check that ran passed: a failure, an op whose kernel is not written yet
/// (MISSING: it proves nothing) or a filter that matches nothing all give 1, so a script can trust 0. 2 means the
/// device could not be opened. This is what the GPU check script (scripts/gpu-check.sh) runs on the device machine.
/// </summary>
public static class CheckCommand
{
    /// <summary>The three outcomes of one check.</summary>
    public enum Outcome { Pass, Fail, Missing, Fallback }

    public static Command Build()
    {
        var device = new Option<string>("--device") { Description = "Device to check: cpu, reference, cuda, cuda:emu, ilgpu...", Required = true };
        var filter = new Option<string[]>("--filter")
        {
            Description = "Run only checks whose name contains this text (case-insensitive; repeat for several).",
            AllowMultipleArgumentsPerToken = true,
        };
        var json = new Option<bool>("--json") { Description = "One JSON object per check, then one summary object, on stdout." };
        var seed = new Option<int>("--seed") { Description = "Offset added to every check's seed (other random inputs).", DefaultValueFactory = _ => 0 };
        var list = new Option<bool>("--list") { Description = "Only list the names of the checks that would run." };
        var command = new Command("check", "Run the kernel conformance suite on a device against the scalar reference.")
        {
            device, filter, json, seed, list,
        };
        command.SetAction(parse => Run(parse.GetValue(device)!, parse.GetValue(filter) ?? [], parse.GetValue(json),
            parse.GetValue(seed), parse.GetValue(list), Console.Out, Console.Error));
        return command;
    }

    /// <summary>The whole command, writing to the given streams (tests call this directly).</summary>
    public static int Run(string deviceName, IReadOnlyList<string> filters, bool json, int seed, bool listOnly,
        TextWriter output, TextWriter error)
    {
        Device device;
        try
        {
            device = Device.Parse(deviceName);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or Kernels.Cuda.CudaException)
        {
            error.WriteLine($"nr check: {e.Message}");
            return 2;
        }

        var checks = Select(filters);
        if (checks.Count == 0)
        {
            error.WriteLine($"nr check: no check matches {string.Join(", ", filters.Select(f => $"'{f}'"))} " +
                            $"({KernelChecks.All.Count} checks exist; --list shows them): nothing was verified");
            if (json) output.WriteLine(JsonLine.Object(("summary", true), ("device", device.Name), ("checks", 0), ("passed", 0), ("failed", 0), ("missing", 0), ("ok", false)));
            return 1;
        }
        if (listOnly)
        {
            foreach (var c in checks) output.WriteLine(c.Name);
            return 0;
        }
        return RunChecks(device, checks, json, seed, output);
    }

    /// <summary>Runs the given checks on a device and prints them; 0 when all passed, 1 otherwise (or when there are none).</summary>
    public static int RunChecks(Device device, IReadOnlyList<KernelCheck> checks, bool json, int seed, TextWriter output)
    {
        if (checks.Count == 0) return 1;
        if (!json) output.WriteLine($"kernel checks on {device.Name} ({device.Kernels.Name}): {checks.Count} of {KernelChecks.All.Count}");
        int width = checks.Max(c => c.Name.Length);
        int passed = 0, failed = 0, missing = 0, fallback = 0;
        double worst = 0;
        var total = Stopwatch.StartNew();
        foreach (var check in checks)
        {
            var r = KernelChecks.Run(check, device.Kernels, device.Memory, seed);
            var outcome = Classify(r);
            switch (outcome)
            {
                case Outcome.Pass: passed++; worst = Math.Max(worst, r.WorstError); break;
                case Outcome.Fallback: passed++; fallback++; worst = Math.Max(worst, r.WorstError); break;
                case Outcome.Fail: failed++; break;
                default: missing++; break;
            }
            if (json)
            {
                output.WriteLine(JsonLine.Object(("check", r.Name), ("status", StatusWord(outcome)), ("worst_error", r.WorstError),
                    ("ms", r.Milliseconds), ("fallback", r.Fallback ?? ""), ("failures", r.Failures.ToArray())));
            }
            else
            {
                string status = outcome switch
                {
                    Outcome.Pass => "pass",
                    Outcome.Fallback => "unsupported (fallback)",
                    Outcome.Fail => "FAIL",
                    _ => "MISSING",
                };
                string err = double.IsFinite(r.WorstError) ? r.WorstError.ToString("0.0E+0", CultureInfo.InvariantCulture) : "-";
                string via = outcome == Outcome.Fallback ? $"  [{r.Fallback} runs on the CPU fallback]" : "";
                output.WriteLine(
                    $"  {r.Name.PadRight(width)}  {status,-7}  err {err,8}  {r.Milliseconds,9:F1} ms{via}");
                foreach (var f in r.Failures) output.WriteLine($"      {f}");
            }
        }
        bool ok = failed == 0 && missing == 0;
        if (json)
            output.WriteLine(JsonLine.Object(("summary", true), ("device", device.Name), ("checks", checks.Count), ("passed", passed), ("failed", failed),
                ("missing", missing), ("fallback", fallback), ("worst_passing_error", worst),
                ("seconds", total.Elapsed.TotalSeconds), ("ok", ok)));
        else
            output.WriteLine($"{passed} passed ({fallback} of them through a fallback), {failed} failed, " +
                             $"{missing} not implemented, of {checks.Count} on {device.Name} " +
                             $"({total.Elapsed.TotalSeconds:F1} s; worst passing error {worst:0.0E+0})");
        return ok ? 0 : 1;
    }

    /// <summary>The checks whose names contain any of the filters (all of them without filters), in suite order.</summary>
    public static IReadOnlyList<KernelCheck> Select(IReadOnlyList<string> filters)
    {
        var wanted = filters.Where(f => !string.IsNullOrWhiteSpace(f)).ToArray();
        if (wanted.Length == 0) return KernelChecks.All;
        return KernelChecks.All.Where(c => wanted.Any(f => c.Name.Contains(f.Trim(), StringComparison.OrdinalIgnoreCase))).ToList();
    }

    /// <summary>
    /// A check that threw <see cref="NotImplementedException"/> (the CUDA backend's placeholder for a kernel not
    /// written yet) is MISSING rather than FAIL: it says which work is left, not that a kernel is wrong.
    /// <see cref="KernelChecks.Run"/> records a throw as "threw TYPE: message".
    /// </summary>
    public static Outcome Classify(KernelCheckResult r)
    {
        if (r.Passed) return r.Fallback == null ? Outcome.Pass : Outcome.Fallback;
        return r.Failures.Count == 1 && r.Failures[0].StartsWith($"threw {nameof(NotImplementedException)}:", StringComparison.Ordinal)
            ? Outcome.Missing
            : Outcome.Fail;
    }

    private static string StatusWord(Outcome o) => o switch
    {
        Outcome.Pass => "pass",
        Outcome.Fallback => "unsupported_fallback",
        Outcome.Fail => "fail",
        _ => "not_implemented",
    };
}
