namespace NativeReasoner.Autograd;

/// <summary>
/// Whether ops record the autograd graph on this thread. <c>using (Tensor.NoGrad()) { ... }</c> turns
/// recording off (inference, optimizer updates, the backward pass itself).
/// </summary>
public static class GradMode
{
    [ThreadStatic] private static int t_disabledDepth;

    public static bool IsEnabled => t_disabledDepth == 0;

    public static IDisposable Disable() => new NoGradScope();

    private sealed class NoGradScope : IDisposable
    {
        private bool _done;
        public NoGradScope() => t_disabledDepth++;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            t_disabledDepth--;
        }
    }
}
