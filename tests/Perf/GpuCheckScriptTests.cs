using System.Diagnostics;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Tests.Cuda;
using Xunit;

namespace NativeReasoner.Tests.Perf;

/// <summary>
/// scripts/gpu-check.sh run, smoke-tested on the CUDA emulator: every stage runs (compile, a slice of the conformance
/// suite, one family's e2e logits, the kernel and model benchmarks at smoke sizes, the table), prints its time and
/// lands in the report's stage table (the server's throughput on the device in bf16 included); and the time budget
/// skips what no longer fits. The archive holds launchers of this build's
/// nr and nr-gpubench instead of the self-contained publish (`pack` is what the GPU machine gets).
/// </summary>
public sealed class GpuCheckScriptTests
{
    private static string RepoRoot()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "NativeReasoner.sln"))) root = Path.GetDirectoryName(root)!;
        return root;
    }

    /// <summary>An archive whose nr/nr and nr/nr-gpubench run the programs built next to the tests.</summary>
    private static string LauncherArchive(string dir)
    {
        string nr = Path.Combine(dir, "nr");
        Directory.CreateDirectory(nr);
        foreach (var program in new[] { "nr", "nr-gpubench" })
        {
            string path = Path.Combine(nr, program);
            File.WriteAllText(path, $"#!/bin/sh\nexec '{Path.Combine(AppContext.BaseDirectory, program)}' \"$@\"\n");
        }
        Run("chmod", ["+x", Path.Combine(nr, "nr"), Path.Combine(nr, "nr-gpubench")],
            new Dictionary<string, string>(), 60);
        File.WriteAllText(Path.Combine(nr, "BUILD_INFO"), "commit: test build (launchers)\n");
        string archive = Path.Combine(dir, "nr.tar.gz");
        Run("tar", ["-C", dir, "-czf", archive, "nr"], new Dictionary<string, string>(), 60);
        return archive;
    }

    private static (int Rc, string Output) Run(string file, string[] args, Dictionary<string, string> env, int seconds)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(seconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran past {seconds} s");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    private static (int Rc, string Output, string Report) GpuCheck(string work, Dictionary<string, string> env)
    {
        string archive = LauncherArchive(Path.Combine(work, "archive"));
        string outDir = Path.Combine(work, "out");
        string script = Path.Combine(RepoRoot(), "scripts", "gpu-check.sh");
        var (rc, output) = Run("bash", [script, "run", "--device", "cuda:emu", "--smoke", "--no-torch", "--archive", archive, "--out", outDir], env, 600);
        var report = Directory.GetFiles(outDir, "gpu-*.md").Select(File.ReadAllText).SingleOrDefault() ?? "";
        return (rc, output, report);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void SmokeRunOnTheEmulatorRunsEveryStage()
    {
        string work = Directory.CreateTempSubdirectory("gpu-check-").FullName;
        try
        {
            var env = new Dictionary<string, string>
            {
                ["NR_GPU_PYTHON"] = "/usr/bin/python3",
                ["NR_GPU_CHECK_FILTER"] = "rows/grpo/c7",
                ["NR_GPU_E2E_FAMILIES"] = "qwen2-tiny-ref",
                // The emulator is slow and the machine shared: generous limits (the budget logic has its own test).
                ["NR_GPU_BUDGET"] = "590",
                ["NR_GPU_LIMIT_BENCH"] = "240", ["NR_GPU_LIMIT_E2E"] = "120", ["NR_GPU_LIMIT_MODEL"] = "120",
                ["NR_GPU_LIMIT_SERVE"] = "120",
            };
            var (rc, output, report) = GpuCheck(work, env);
            Assert.True(rc == 0, output);
            foreach (var stage in new[] { "info", "compile", "check", "e2e", "bench", "model", "serve", "table" })
                Assert.Matches($@"\| {stage} \| ok \| \d+ \|", report);
            Assert.Contains("| torch | skipped: --no-torch |", report);
            Assert.Matches(@"== e2e: ok in \d+s", output);
            Assert.Contains("qwen2-tiny-ref fp32 full forward: relative error", report);
            Assert.Contains("train_step_dense", report);
            Assert.Contains("decode_dense", report);
            Assert.Contains("bf16-autocast", report);
            Assert.Contains("files compiled", report);
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }

    [Fact]
    public void AStageThatNoLongerFitsTheBudgetIsSkipped()
    {
        string work = Directory.CreateTempSubdirectory("gpu-check-").FullName;
        try
        {
            var (rc, output, report) = GpuCheck(work, new Dictionary<string, string> { ["NR_GPU_BUDGET"] = "5" });
            Assert.True(rc == 0, output);
            foreach (var stage in new[] { "info", "compile", "check", "e2e", "bench", "model", "serve", "table" })
                Assert.Contains($"| {stage} | skipped: time budget spent (5s;", report);
        }
        finally
        {
            Directory.Delete(work, true);
        }
    }
}
