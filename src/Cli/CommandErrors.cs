using System.CommandLine;
using System.CommandLine.Invocation;
using NativeReasoner.IO;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Model;
using NativeReasoner.RL.Chat;

namespace NativeReasoner.Cli;

/// <summary>
/// A bad option value that a command finds itself (out of range, inconsistent with another option): a usage error,
/// exit code 2, like the parser's own.
/// </summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The error contract of every <c>nr</c> command, applied once to the whole command tree (<see cref="Guard"/>), so
/// a command gets it by being registered:
/// <list type="bullet">
/// <item>usage errors (unknown option, missing or unparsable value, <see cref="UsageException"/>): one line
/// <c>nr COMMAND: MESSAGE</c> per error on stderr, exit code 2;</item>
/// <item>documented errors (<see cref="IsDocumented"/>: bad files, bad configurations, missing files):
/// <c>nr COMMAND: MESSAGE</c>, exit code 1;</item>
/// <item>anything else is a bug: a one-line summary naming the file the full trace was written to (under the temp
/// directory), exit code 3.</item>
/// </list>
/// </summary>
public static class CommandErrors
{
    public const int DocumentedErrorExitCode = 1;
    public const int UsageExitCode = 2;
    public const int UnexpectedErrorExitCode = 3;

    /// <summary>The exceptions the engine documents for bad input; their message says what is wrong and where.
    /// </summary>
    public static bool IsDocumented(Exception e) =>
        e is ModelConfigException or CheckpointMismatchException or SafetensorsException or TemplateException
            or InvalidDataException or IOException or UnauthorizedAccessException or NotSupportedException
            or ArgumentException or InvalidOperationException or CudaException or OperationCanceledException;

    /// <summary>Wraps the action of <paramref name="root"/> and of every command below it; their error lines go to
    /// <paramref name="error"/> (stderr when null).</summary>
    public static RootCommand Guard(RootCommand root, TextWriter? error = null)
    {
        Wrap(root, [], error);
        return root;
    }

    /// <summary>
    /// Parses and runs <paramref name="args"/>: parse errors become usage lines (exit 2), the command's own result
    /// otherwise (its action is guarded by <see cref="Guard"/>).
    /// </summary>
    public static int Run(RootCommand root, string[] args, TextWriter? error = null)
    {
        error ??= Console.Error;
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            string name = CommandPath(parse.CommandResult);
            foreach (var e in parse.Errors) error.WriteLine($"nr{name}: {e.Message}");
            error.WriteLine($"Run 'nr{name} --help' for usage.");
            return UsageExitCode;
        }
        return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    private static void Wrap(Command command, string[] path, TextWriter? error)
    {
        string name = path.Length == 0 ? "" : " " + string.Join(' ', path);
        switch (command.Action)
        {
            case SynchronousCommandLineAction sync and not GuardedAction:
                command.Action = new GuardedAction(name, sync, error);
                break;
            case AsynchronousCommandLineAction async and not GuardedAsyncAction:
                command.Action = new GuardedAsyncAction(name, async, error);
                break;
        }
        foreach (var sub in command.Subcommands) Wrap(sub, [.. path, sub.Name], error);
    }

    private static string CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new List<string>();
        for (var r = result; r?.Parent is System.CommandLine.Parsing.CommandResult parent; r = parent)
            names.Add(r.Command.Name);
        names.Reverse();
        return names.Count == 0 ? "" : " " + string.Join(' ', names);
    }

    /// <summary>Runs <paramref name="run"/> under the contract; <paramref name="name"/> is " COMMAND" (or "").
    /// </summary>
    public static int Invoke(string name, Func<int> run, TextWriter? error = null)
    {
        try
        {
            return run();
        }
        catch (Exception e)
        {
            return Report(name, e, error ?? Console.Error);
        }
    }

    /// <summary>Prints the error line of <paramref name="e"/> (and writes the trace of a bug); returns the exit code.
    /// </summary>
    public static int Report(string name, Exception e, TextWriter error)
    {
        if (e is UsageException)
        {
            error.WriteLine($"nr{name}: {e.Message}");
            return UsageExitCode;
        }
        if (IsDocumented(e))
        {
            error.WriteLine($"nr{name}: {e.Message}");
            return DocumentedErrorExitCode;
        }
        error.WriteLine($"nr{name}: unexpected error (a bug): {e.GetType().Name}: {FirstLine(e.Message)}; " +
                        $"full trace in {WriteTrace(name, e)}");
        return UnexpectedErrorExitCode;
    }

    /// <summary>Writes the exception with its whole trace to a new file under the temp directory; returns its path
    /// (or why it could not be written).</summary>
    private static string WriteTrace(string name, Exception e)
    {
        try
        {
            string file = Path.Combine(Path.GetTempPath(),
                $"nr{name.Replace(' ', '-')}-error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
            File.WriteAllText(file, $"nr{name}: {DateTime.UtcNow:O}\nargs: {string.Join(' ',
                Environment.GetCommandLineArgs().Skip(1))}\n\n{e}\n");
            return file;
        }
        catch (Exception writeError) when (writeError is IOException or UnauthorizedAccessException)
        {
            return $"(nowhere: the trace could not be written: {writeError.Message})";
        }
    }

    private static string FirstLine(string s)
    {
        int nl = s.IndexOf('\n');
        return nl < 0 ? s : s[..nl];
    }

    private sealed class GuardedAction(string name, SynchronousCommandLineAction inner, TextWriter? error)
        : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult) =>
            CommandErrors.Invoke(name, () => inner.Invoke(parseResult), error);
    }

    private sealed class GuardedAsyncAction(string name, AsynchronousCommandLineAction inner, TextWriter? error)
        : AsynchronousCommandLineAction
    {
        public override async Task<int> InvokeAsync(ParseResult parseResult,
            CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.InvokeAsync(parseResult, cancellationToken);
            }
            catch (Exception e)
            {
                return Report(name, e, error ?? Console.Error);
            }
        }
    }
}
