// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner.Kernels.Verification;

/// <summary>
/// One conformance check of a backend's kernels against <see cref="ReferenceKernels"/> (ggml's
/// test-backend-ops, llm.c's check-then-benchmark): fresh random inputs at awkward sizes, the op on the backend
/// under test and on the reference, outputs compared by relative error ‖out − ref‖ / ‖ref‖ (NaN and infinities
/// must match exactly). The same checks run in the xunit tests (CUDA emulator, GPU where present) and in
/// `nr check --device NAME` (the GPU check script runs that on the device machine).
/// </summary>
public sealed class KernelCheck
{
    public KernelCheck(string name, Action<KernelCheckContext> run)
    {
        Name = name;
        Run = run;
    }

    /// <summary>"family/op/case", e.g. "gemm/nt/37x53x29".</summary>
    public string Name { get; }

    /// <summary>Runs the op on the context's backend and records comparisons in the context.</summary>
    public Action<KernelCheckContext> Run { get; }

    public override string ToString() => Name;
}

/// <summary>
/// The outcome of one check: the worst relative error over its comparisons, and what failed. <see cref="Fallback"/>
/// names the optional op that the backend lacks and that ran through
/// <see cref="Kernels.Fallback.KernelFallback"/> instead (null when the backend ran everything itself): such a pass verifies the fallback, not a kernel of the backend.
/// </summary>
public sealed record KernelCheckResult(string Name, bool Passed, double WorstError, IReadOnlyList<string> Failures,
    double Milliseconds, string? Fallback = null);

/// <summary>
/// What a check gets: the backend under test (kernels + memory), the reference, a seeded generator, and helpers
/// that move arrays to and from the backend's memory (freed on dispose) and record comparisons.
/// </summary>
public sealed unsafe class KernelCheckContext : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];
    private readonly List<string> _failures = [];

    public KernelCheckContext(IKernels kernels, IDeviceMemory memory, int seed)
    {
        K = kernels;
        Memory = memory;
        Rng = new Random(seed);
    }

    /// <summary>The kernels under test.</summary>
    public IKernels K { get; }

    public IDeviceMemory Memory { get; }

    /// <summary>The oracle: scalar, single-threaded, double accumulation.</summary>
    public ReferenceKernels Ref => ReferenceKernels.Instance;

    public Random Rng { get; }

    public double WorstError { get; private set; }

    public IReadOnlyList<string> Failures => _failures;

    /// <summary>The optional op this check ran through the host fallback, if the backend lacks it.</summary>
    public string? Fallback { get; private set; }

    /// <summary>
    /// Batched grouped-query decode for the backend under test: its own kernel, or a fresh host fallback (its
    /// warning is swallowed here; the result says "fallback" instead).
    /// </summary>
    public IGqaDecodeAttention GqaDecode()
    {
        if (K is IGqaDecodeAttention own) return own;
        UsedFallback(Kernels.Fallback.OptionalOp.GqaDecodeAttention);
        return new Kernels.Fallback.HostGqaDecodeAttention(K.Name, Memory, _ => { });
    }

    /// <summary>Records that the check ran an optional op through its fallback (the backend lacks the op).</summary>
    public void UsedFallback(Kernels.Fallback.OptionalOp op) => Fallback = op.ToString();

    /// <summary>Uniform floats in [lo, hi).</summary>
    public float[] Rand(long n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)Rng.NextDouble();
        return a;
    }

    /// <summary>Copies a host array to the backend; the pointer lives until the context is disposed.</summary>
    public T* Up<T>(T[] host) where T : unmanaged
    {
        long bytes = Math.Max(1, (long)host.Length * sizeof(T));
        var b = Memory.Allocate(bytes);
        _buffers.Add(b);
        fixed (T* p = host) Memory.CopyFromHost(p, b.Pointer, (long)host.Length * sizeof(T));
        return (T*)b.Pointer;
    }

    /// <summary>A backend array of n elements filled with NaN bit patterns (so an output never written shows up).</summary>
    public T* Garbage<T>(long n) where T : unmanaged
    {
        var host = new T[Math.Max(1, n)];
        fixed (T* p = host) new Span<byte>(p, host.Length * sizeof(T)).Fill(0xff);
        return Up(host);
    }

    /// <summary>Reads n elements back from the backend.</summary>
    public T[] Down<T>(T* p, long n) where T : unmanaged
    {
        var host = new T[n];
        fixed (T* h = host) Memory.CopyToHost((byte*)p, h, n * sizeof(T));
        return host;
    }

    /// <summary>Records ‖actual − expected‖ / ‖expected‖ ≤ tol; NaN/±∞ must agree element by element.</summary>
    public void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tol, string what)
    {
        if (actual.Length != expected.Length)
        {
            _failures.Add($"{what}: length {actual.Length}, expected {expected.Length}");
            return;
        }
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e) || float.IsNaN(a) || float.IsInfinity(e) || float.IsInfinity(a))
            {
                bool same = (float.IsNaN(e) && float.IsNaN(a)) || e == a;
                if (!same)
                {
                    _failures.Add($"{what}: element {i} is {a}, reference {e}");
                    WorstError = double.PositiveInfinity;
                    return;
                }
                continue;
            }
            double d = (double)a - e;
            num += d * d;
            den += (double)e * e;
        }
        double err = den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num);
        if (double.IsNaN(err)) err = double.PositiveInfinity;
        WorstError = Math.Max(WorstError, err);
        if (!(err <= tol)) _failures.Add($"{what}: relative error {err:E3} > {tol:E1}");
    }

    /// <summary>Records bit-exact equality (ids, indices, integer outputs, copies).</summary>
    public void Exact<T>(ReadOnlySpan<T> actual, ReadOnlySpan<T> expected, string what) where T : unmanaged, IEquatable<T>
    {
        if (actual.Length != expected.Length)
        {
            _failures.Add($"{what}: length {actual.Length}, expected {expected.Length}");
            return;
        }
        for (int i = 0; i < expected.Length; i++)
            if (!actual[i].Equals(expected[i]))
            {
                _failures.Add($"{what}: element {i} is {actual[i]}, expected {expected[i]}");
                WorstError = double.PositiveInfinity;
                return;
            }
    }

    /// <summary>Records a failure unless the condition holds.</summary>
    public void Require(bool condition, string what)
    {
        if (!condition) _failures.Add(what);
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Release();
        _buffers.Clear();
    }
}
