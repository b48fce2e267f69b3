namespace NativeReasoner.Model; internal static class Placeholder {}
