namespace NativeReasoner.RL.Chat;

/// <summary>
/// A chat template that cannot be parsed or rendered: a syntax error, a construct outside the supported Jinja
/// subset, an undefined value used in an operation, or the template's own <c>raise_exception(...)</c>.
/// The message names the template line.
/// </summary>
public class TemplateException : Exception
{
    /// <summary>1-based line of the template the error belongs to.</summary>
    public int Line { get; }

    /// <summary>The description without the line prefix.</summary>
    public string Reason { get; }

    /// <summary>Where the template came from (a tokenizer_config.json path), or null.</summary>
    public string? TemplateSource { get; }

    public TemplateException(int line, string reason, string? source = null)
        : base($"{(source == null ? "" : source + ": ")}chat template line {line}: {reason}")
    {
        Line = line;
        Reason = reason;
        TemplateSource = source;
    }
}

/// <summary>The template called <c>raise_exception(message)</c> (HF templates reject unsupported conversations
/// so).</summary>
public sealed class TemplateRaisedException(int line, string raised, string? source = null)
    : TemplateException(line, $"the template raised an error: {raised}", source)
{
    /// <summary>The template's own message, unchanged.</summary>
    public string Raised { get; } = raised;
}

/// <summary>
/// An evaluation error without a line yet; the expression or statement evaluating it adds its line and rethrows
/// it as a <see cref="TemplateException"/>.
/// </summary>
internal sealed class JinjaError(string message) : Exception(message);

/// <summary>
/// <c>raise_exception(message)</c> while evaluating; the expression that called it rethrows it as a
/// <see cref="TemplateRaisedException"/> with its line.
/// </summary>
internal sealed class JinjaRaise(string message) : Exception(message);
