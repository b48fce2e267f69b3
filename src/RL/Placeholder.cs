namespace NativeReasoner.RL; internal static class Placeholder {}
