// The process groups record their exchanges on the autograd tape (an all-to-all's backward is the reverse
// all-to-all), which takes the tape's internal recording hook.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("NativeReasoner.Distributed")]
