using System.Collections.Concurrent;

namespace NativeReasoner.Serving;

/// <summary>
/// The one thread that runs the requests of a chat client over a policy without a model (a scripted one), in
/// arrival order, one at a time; a model gets the <see cref="BatchScheduler"/> instead. The policy is only ever
/// touched from here, so concurrent callers need no locks. <see cref="Dispose"/> lets the queued jobs
/// run (the client cancels them first, so they end at once) and joins the thread.
/// </summary>
public sealed class GenerationWorker : IDisposable
{
    private readonly BlockingCollection<Action> _jobs = new();
    private readonly Thread _thread;

    public GenerationWorker(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Queues a job; it must not throw (each job reports its own failure to its caller).</summary>
    public void Enqueue(Action job)
    {
        try
        {
            _jobs.Add(job);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(GenerationWorker), "the chat client has been disposed");
        }
    }

    private void Loop()
    {
        foreach (var job in _jobs.GetConsumingEnumerable()) job();
    }

    public void Dispose()
    {
        if (_jobs.IsAddingCompleted) return;
        _jobs.CompleteAdding();
        if (Thread.CurrentThread != _thread) _thread.Join();
        _jobs.Dispose();
    }
}
