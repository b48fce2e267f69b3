using System.CommandLine;
using System.Diagnostics;
using NativeReasoner.Cli;
using Xunit;

namespace NativeReasoner.Tests.Cli;

/// <summary>
/// The error contract of <c>nr</c> (<see cref="CommandErrors"/>): every command answers bad input with one line
/// <c>nr COMMAND: MESSAGE</c> and exit code 1 (a documented error) or 2 (a usage error), never a stack trace; a bug
/// gives a one-line summary, exit code 3 and a trace file. The per-command cases run the real <c>nr</c> in a child
/// process, so what is checked is what a user sees.
/// </summary>
public sealed class CliErrorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "nr-cli-errors-" + Guid.NewGuid().ToString("N"));

    public CliErrorTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Runs <c>nr ARGS</c> in a child process; returns its exit code and stderr.</summary>
    private static (int Code, string Error) Nr(params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "nr.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), $"nr {string.Join(' ', args)} did not finish");
        _ = stdout.Result;
        return (p.ExitCode, stderr.Result);
    }

    /// <summary>Exit code <paramref name="code"/>, an error line for <paramref name="command"/> that contains
    /// <paramref name="expected"/>, and no stack trace.</summary>
    private static void AssertError(int code, string command, string expected, params string[] args)
    {
        var (actual, error) = Nr(args);
        Assert.True(actual == code, $"nr {string.Join(' ', args)}: exit {actual}, expected {code}; stderr:\n{error}");
        var line = error.Split('\n').FirstOrDefault(l => l.StartsWith($"nr {command}: ", StringComparison.Ordinal));
        Assert.True(line != null, $"no 'nr {command}: ' line in stderr:\n{error}");
        Assert.Contains(expected, line);
        Assert.DoesNotContain("   at ", error);
        Assert.DoesNotContain("Unhandled exception", error);
    }

    /// <summary>A model directory with a tokenizer whose config.json has a field of the wrong kind.</summary>
    private string BadModelDir()
    {
        var dir = Path.Combine(_dir, "bad-model");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "qwen2", "hidden_size": "wide"}""");
        File.Copy(Fixture("fuzz", "tokenizer-json", "seed-qwen3.json"), Path.Combine(dir, "tokenizer.json"), true);
        return dir;
    }

    private static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    [Fact]
    public void Info_UnknownOption_IsAUsageError() => AssertError(2, "info", "'--bogus'", "info", "--bogus");

    [Fact]
    public void BenchGemm_ZeroSize_IsAUsageError() =>
        AssertError(2, "bench gemm", "must be positive", "bench", "gemm", "--m", "0", "--n", "1", "--k", "1");

    [Fact]
    public void BenchAttention_HeadsNotAMultipleOfKvHeads_IsAUsageError() =>
        AssertError(2, "bench attention", "multiple", "bench", "attention", "--seq", "4", "--heads", "3",
            "--kv-heads", "2");

    [Fact]
    public void BenchPeak_BadNumber_IsAUsageError() =>
        AssertError(2, "bench peak", "'abc'", "bench", "peak", "--trials", "abc");

    [Fact]
    public void BenchModel_UnknownPart_IsAUsageError() =>
        AssertError(2, "bench model", "--only", "bench", "model", "--only", "sideways");

    [Fact]
    public void Check_UnknownDevice_IsAUsageError() =>
        AssertError(2, "check", "unknown device 'nosuch'", "check", "--device", "nosuch");

    [Fact]
    public void Logits_BadConfig_NamesTheFileAndField() =>
        AssertError(1, "logits", "hidden_size", "logits", "--model", BadModelDir(),
            "--input", Fixture("deepseek-v3-tiny-yarn", "golden.safetensors"), "--out", Path.Combine(_dir, "o"));

    [Fact]
    public void GrpoGrad_BadConfig_NamesTheField() =>
        AssertError(1, "grpo-grad", "hidden_size", "grpo-grad", "--model", BadModelDir(),
            "--input", Fixture("qwen2-tiny-ref", "grpo_input.safetensors"), "--out", Path.Combine(_dir, "o"));

    [Fact]
    public void Generate_PromptNotAString_NamesTheFileAndLine()
    {
        var prompts = Path.Combine(_dir, "prompts.jsonl");
        File.WriteAllText(prompts, "{\"prompt\": \"fine\"}\n{\"prompt\": 5}\n");
        AssertError(1, "generate", "prompts.jsonl:2", "generate", "--model", BadModelDir(), "--prompts", prompts);
    }

    [Fact]
    public void Generate_ZeroSamples_IsAUsageError() =>
        AssertError(2, "generate", "--num-samples must be ≥ 1", "generate", "--model", BadModelDir(),
            "--prompt", "hi", "--num-samples", "0");

    [Fact]
    public void Eval_MissingModel_IsADocumentedError() =>
        AssertError(1, "eval", "does not exist", "eval", "--model", Path.Combine(_dir, "absent"), "--task",
            "arithmetic");

    [Fact]
    public void Chat_BadConfig_NamesTheField() =>
        AssertError(1, "chat", "hidden_size", "chat", "--model", BadModelDir());

    [Fact]
    public void Serve_BadConfig_NamesTheField() =>
        AssertError(1, "serve", "no chat template", "serve", "--model", BadModelDir(), "--port", "0");

    [Fact]
    public void Quantize_BadConfig_NamesTheField() =>
        AssertError(1, "quantize", "hidden_size", "quantize", "--model", BadModelDir(),
            "--out", Path.Combine(_dir, "q"), "--dtype", "q8_0");

    [Theory]
    [InlineData("r1-zero")]
    [InlineData("r1")]
    public void Pipeline_BadConfig_NamesTheField(string stage) =>
        AssertError(1, $"pipeline {stage}", "hidden_size", "pipeline", stage, "--model", BadModelDir(),
            "--run-dir", Path.Combine(_dir, "run"));

    [Fact]
    public void PipelineDistill_MissingTeacher_IsADocumentedError() =>
        AssertError(1, "pipeline distill", "does not exist", "pipeline", "distill", "--teacher",
            Path.Combine(_dir, "absent"), "--student-config", "tiny", "--run-dir", Path.Combine(_dir, "run"));

    [Fact]
    public void Train_RunDirectoryOfAnotherConfiguration_NamesRunJson()
    {
        var run = Path.Combine(_dir, "runs", "other");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "run.json"), """{"settings": {"PretrainSteps": 1}}""");
        AssertError(1, "train", "run.json", "train", "--runs-dir", Path.Combine(_dir, "runs"), "--name", "other");
    }

    [Fact]
    public void Report_SummaryNotAnObject_NamesTheFile()
    {
        File.WriteAllText(Path.Combine(_dir, "summary.json"), "[1, 2]");
        AssertError(1, "report", "summary.json", "report", "--run", _dir);
    }

    [Fact]
    public void Tokenize_NegativeTokenId_NamesTheFileAndToken()
    {
        File.WriteAllText(Path.Combine(_dir, "tokenizer.json"), """
            {"model": {"type": "BPE", "vocab": {"a": 0, "b": -5}, "merges": []},
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}}
            """);
        AssertError(1, "tokenize", "tokenizer.json", "tokenize", "--model", _dir, "--text", "ab");
    }

    /// <summary>Every registered command, including ones added later, reports an unknown option as a usage error.
    /// </summary>
    [Fact]
    public void EveryCommand_UnknownOption_IsOneUsageLinePerError()
    {
        var paths = new List<string[]>();
        void Walk(Command c, string[] path)
        {
            paths.Add(path);
            foreach (var sub in c.Subcommands) Walk(sub, [.. path, sub.Name]);
        }
        Walk(Program.BuildRoot(), []);
        Assert.True(paths.Count > 15, $"only {paths.Count} commands found");
        foreach (var path in paths)
        {
            var error = new StringWriter();
            int code = CommandErrors.Run(CommandErrors.Guard(Program.BuildRoot(), error), [.. path, "--no-such-option"],
                error);
            string name = path.Length == 0 ? "nr: " : $"nr {string.Join(' ', path)}: ";
            Assert.True(code == 2, $"{name}exit {code}; stderr:\n{error}");
            var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains(lines, l => l.StartsWith(name, StringComparison.Ordinal) && l.Contains("--no-such-option"));
            Assert.StartsWith("Run 'nr", lines[^1]);
        }
    }

    private static RootCommand Throwing(Exception e, TextWriter error)
    {
        var root = new RootCommand("test");
        var command = new Command("fail", "throws");
        command.SetAction(new Func<ParseResult, int>(_ => throw e));
        root.Subcommands.Add(command);
        return CommandErrors.Guard(root, error);
    }

    [Fact]
    public void DocumentedException_IsOneLine_ExitCodeOne()
    {
        var error = new StringWriter();
        int code = CommandErrors.Run(Throwing(new InvalidDataException("data.jsonl:3: bad"), error), ["fail"], error);
        Assert.Equal(1, code);
        Assert.Equal("nr fail: data.jsonl:3: bad", error.ToString().TrimEnd());
    }

    [Fact]
    public void UsageException_IsOneLine_ExitCodeTwo()
    {
        var error = new StringWriter();
        var usage = new UsageException("--steps must be ≥ 1, got 0");
        int code = CommandErrors.Run(Throwing(usage, error), ["fail"], error);
        Assert.Equal(2, code);
        Assert.Equal("nr fail: --steps must be ≥ 1, got 0", error.ToString().TrimEnd());
    }

    [Fact]
    public void UnexpectedException_IsOneLineNamingTheTraceFile_ExitCodeThree()
    {
        var error = new StringWriter();
        Exception bug;
        try { throw new NullReferenceException("a bug"); }
        catch (NullReferenceException e) { bug = e; }
        int code = CommandErrors.Run(Throwing(bug, error), ["fail"], error);
        Assert.Equal(3, code);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("nr fail: unexpected error (a bug): NullReferenceException: a bug; full trace in ", line);
        var trace = line[(line.IndexOf("full trace in ", StringComparison.Ordinal) + "full trace in ".Length)..];
        try
        {
            var text = File.ReadAllText(trace);
            Assert.Contains("System.NullReferenceException: a bug", text);
            Assert.Contains($"at {typeof(CliErrorTests).FullName}", text);
        }
        finally { File.Delete(trace); }
    }
}
