namespace NativeReasoner.Server;

/// <summary>
/// Bounds the work the endpoints hand to the chat client: at most <c>maxRunning</c> requests generate at once, at
/// most <c>maxWaiting</c> wait for one of them to finish, and a request beyond both is refused (the endpoint answers
/// 429). A waiting request whose client goes away leaves the queue.
/// </summary>
internal sealed class AdmissionGate(int maxRunning, int maxWaiting)
{
    private readonly SemaphoreSlim _slots = new(maxRunning, maxRunning);
    private int _waiting;
    private int _running;

    public int Waiting => Volatile.Read(ref _waiting);
    public int Running => Volatile.Read(ref _running);

    /// <summary>A slot held until the lease is disposed, or null when the queue is full.</summary>
    public async ValueTask<Lease?> TryEnterAsync(CancellationToken cancel)
    {
        if (!_slots.Wait(0))
        {
            if (Interlocked.Increment(ref _waiting) > maxWaiting)
            {
                Interlocked.Decrement(ref _waiting);
                return null;
            }
            try
            {
                await _slots.WaitAsync(cancel).ConfigureAwait(false);
            }
            finally { Interlocked.Decrement(ref _waiting); }
        }
        Interlocked.Increment(ref _running);
        return new Lease(this);
    }

    public sealed class Lease(AdmissionGate gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            Interlocked.Decrement(ref gate._running);
            gate._slots.Release();
        }
    }
}
