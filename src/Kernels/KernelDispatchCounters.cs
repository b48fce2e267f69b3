namespace NativeReasoner.Kernels;

/// <summary>
/// How many times each device kernel was launched, by kernel name ("nr_attnbf16_fwd_d64", "nr_mla_decode_f32",
/// "ilgpu_gqa_decode"): the record that says which path a model really took. The CUDA backend counts every launch,
/// the ILGPU backend the kernels a model-level fast path depends on. Counts go to the process-wide
/// <see cref="Process"/> and to every <see cref="Record"/> scope open in the launching async flow, so a test reads
/// only its own launches even while other tests run beside it. A count is one dictionary update under a lock,
/// noise next to a kernel launch.
/// </summary>
public sealed class KernelDispatchCounters
{
    private static readonly AsyncLocal<KernelDispatchCounters?> s_innermost = new();

    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    private readonly KernelDispatchCounters? _outer;

    private KernelDispatchCounters(KernelDispatchCounters? outer) => _outer = outer;

    /// <summary>Every launch of this process.</summary>
    public static KernelDispatchCounters Process { get; } = new(null);

    /// <summary>Counts one launch of <paramref name="kernel"/>.</summary>
    public static void Count(string kernel)
    {
        Process.Add(kernel);
        for (var c = s_innermost.Value; c != null; c = c._outer) c.Add(kernel);
    }

    /// <summary>
    /// Starts counting the launches of this async flow (and the tasks it starts) into <paramref name="counters"/>
    /// until the returned scope is disposed. Scopes nest: a launch counts in every open one.
    /// </summary>
    public static IDisposable Record(out KernelDispatchCounters counters)
    {
        var previous = s_innermost.Value;
        counters = new KernelDispatchCounters(previous);
        s_innermost.Value = counters;
        return new Scope(previous);
    }

    /// <summary>Launches of exactly <paramref name="kernel"/>.</summary>
    public long this[string kernel]
    {
        get
        {
            lock (_counts) return _counts.GetValueOrDefault(kernel);
        }
    }

    /// <summary>Launches of every kernel whose name starts with <paramref name="prefix"/> ("nr_attnbf16_").</summary>
    public long StartingWith(string prefix)
    {
        long n = 0;
        lock (_counts)
            foreach (var (k, v) in _counts)
                if (k.StartsWith(prefix, StringComparison.Ordinal)) n += v;
        return n;
    }

    /// <summary>Total launches.</summary>
    public long Total
    {
        get
        {
            lock (_counts) return _counts.Values.Sum();
        }
    }

    /// <summary>The counts, most launched first (ties by name).</summary>
    public IReadOnlyList<KeyValuePair<string, long>> Snapshot()
    {
        lock (_counts)
            return _counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).ToArray();
    }

    /// <summary>
    /// One line for a log: "kernels: 1234 launches; nr_gemm_f32 ×600, nr_rmsnorm_f32 ×200, …" (the most launched).
    /// </summary>
    public string Summary(int top = 12)
    {
        var all = Snapshot();
        if (all.Count == 0) return "kernels: no device launches";
        var shown = string.Join(", ", all.Take(top).Select(p => $"{p.Key} ×{p.Value}"));
        string more = all.Count > top ? $", … ({all.Count - top} more)" : "";
        return $"kernels: {all.Sum(p => p.Value)} launches; {shown}{more}";
    }

    private void Add(string kernel)
    {
        lock (_counts)
        {
            _counts.TryGetValue(kernel, out long n);
            _counts[kernel] = n + 1;
        }
    }

    private sealed class Scope(KernelDispatchCounters? previous) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            s_innermost.Value = previous;
        }
    }
}
