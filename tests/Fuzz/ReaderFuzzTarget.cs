namespace NativeReasoner.Tests.Fuzz;

/// <summary>
/// One reader under fuzzing. Each input is written to <see cref="FileName"/> in a work directory and read by
/// <see cref="Read"/>, which also uses the result (encodes, renders, reads every tensor), so a reader that accepts
/// garbage and fails later is caught too. The only acceptable failure is an exception for which
/// <see cref="IsDocumented"/> holds and whose message names <see cref="FileName"/>; anything else (another
/// exception type, a message without the file, a hang) is a crash.
/// </summary>
public sealed class ReaderFuzzTarget
{
    /// <summary>The target's name, and its corpus folder under <c>tests/fixtures/fuzz/</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The file the input becomes, inside the work directory.</summary>
    public required string FileName { get; init; }

    /// <summary>Writes the files beside the input that the reader needs (once per run).</summary>
    public Action<string>? Setup { get; init; }

    /// <summary>Reads the work directory (<see cref="FileName"/> holds the input) and uses what it read.</summary>
    public required Action<string> Read { get; init; }

    /// <summary>The documented exception types of the reader.</summary>
    public required Func<Exception, bool> IsDocumented { get; init; }

    /// <summary>Seeds made in code (beside the committed <c>seed-*</c> files), for inputs that depend on the build.
    /// </summary>
    public Func<IEnumerable<byte[]>>? GeneratedSeeds { get; init; }

    public override string ToString() => Name;
}
