using System.Runtime.CompilerServices;

// The tests reach the CLI's internals (JsonLine, the command helpers) directly.
[assembly: InternalsVisibleTo("NativeReasoner.Tests")]
