using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// What a GPU benchmark gets: the device (kernels + memory), the sizes, the timer, device buffers filled with
/// random data (freed when the benchmark ends), and <see cref="Measure"/>, which times one op and emits its row.
/// An op whose kernel is missing (NotImplementedException), or that the device does not have, becomes a row that
/// says so instead of ending the run.
/// </summary>
internal sealed unsafe class GpuBenchContext : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];
    private readonly Action<GpuBenchRow> _emit;
    private double? _copyGbps;
    private bool _copyTried;

    public GpuBenchContext(Device device, GpuBenchSizes sizes, Action<GpuBenchRow> emit)
    {
        Device = device;
        Sizes = sizes;
        _emit = emit;
        Timer = new GpuBenchTimer(device, sizes);
    }

    public Device Device { get; }
    public GpuBenchSizes Sizes { get; }
    public GpuBenchTimer Timer { get; }
    public IKernels K => Device.Kernels;
    public IDeviceMemory Memory => Device.Memory;

    /// <summary>The CUDA kernels when the device is a CUDA device (GPU or emulator), else null.</summary>
    public CudaKernels? Cuda => Device.Kernels as CudaKernels;

    /// <summary>The card's name as the driver reports it ("NVIDIA H100 80GB HBM3"), or a description of a non-GPU device.</summary>
    public string CardName { get; init; } = "";

    /// <summary>
    /// --bf16: the model benchmarks (training step, decode) run inside <see cref="Autocast.Bf16"/> and their rows say
    /// "bf16-autocast" (the kernel rows have their own bf16 variants).
    /// </summary>
    public bool Bf16Autocast { get; init; }

    /// <summary>The dtype label of a model benchmark's rows.</summary>
    public string ModelDType => Bf16Autocast ? "bf16-autocast" : "fp32";

    /// <summary>An autocast scope when --bf16 is on, else nothing to dispose.</summary>
    public IDisposable? ModelPrecision() => Bf16Autocast ? Autocast.Bf16() : null;

    /// <summary>Records the copy bandwidth measured by the copy benchmark itself (so it is not measured twice).</summary>
    public void SetCopyGbps(double gbps)
    {
        _copyGbps = gbps;
        _copyTried = true;
    }

    /// <summary>Ops that emitted a row (a benchmark that fails before measuring reports under its own name).</summary>
    public int RowsEmitted { get; private set; }

    /// <summary>
    /// The device-to-device copy bandwidth (GB/s, bytes read + written), measured once on first use: the ceiling
    /// the memory-bound rows are compared with. Null if the copy itself could not be timed.
    /// </summary>
    public double? CopyGbps
    {
        get
        {
            if (_copyTried) return _copyGbps;
            _copyTried = true;
            try
            {
                CopyBuffers(out byte* src, out byte* dst, out long bytes);
                var t = Timer.Time(() => Memory.Copy(src, dst, bytes));
                _copyGbps = 2.0 * bytes / (t.MedianMs * 1e6);
            }
            catch (Exception)
            {
                _copyGbps = null; // the copy row itself (if selected) says why
            }
            return _copyGbps;
        }
    }

    /// <summary>Two copy-size buffers of random bytes.</summary>
    internal void CopyBuffers(out byte* src, out byte* dst, out long bytes)
    {
        bytes = Sizes.CopyBytes / 4 * 4;
        src = (byte*)Floats(bytes / 4);
        dst = (byte*)Empty<float>(bytes / 4);
    }

    /// <summary>
    /// Times <paramref name="run"/> (after <paramref name="setup"/>, run once, untimed) and emits the row. Returns
    /// false when the op could not run (missing kernel, unsupported, error): the row says why.
    /// </summary>
    public GpuBenchRow Measure(GpuBenchOp op, Action run, Action? setup = null)
    {
        GpuBenchRow row;
        try
        {
            setup?.Invoke();
            var t = Timer.Time(run);
            row = new GpuBenchRow(op, GpuBenchRow.Ok, t, null, Metrics(op, t));
        }
        catch (Exception e)
        {
            row = new GpuBenchRow(op, GpuBenchRunner.StatusOf(e), null, GpuBenchRunner.Describe(e), []);
        }
        Emit(row);
        return row;
    }

    /// <summary>
    /// Emits the row of an op timed by its own loop (the decode benchmark times whole generation runs and reports the
    /// time per step); the rates come from <paramref name="timing"/> as in <see cref="Measure"/>.
    /// </summary>
    public void EmitTimed(GpuBenchOp op, GpuBenchTiming timing) =>
        Emit(new GpuBenchRow(op, GpuBenchRow.Ok, timing, null, Metrics(op, timing)));

    /// <summary>A row for an op that cannot run here, with the reason.</summary>
    public void Skip(GpuBenchOp op, string status, string reason) => Emit(new GpuBenchRow(op, status, null, reason, []));

    internal void Emit(GpuBenchRow row)
    {
        RowsEmitted++;
        _planned.RemoveAll(p => p.Op == row.Op.Op);
        _emit(row);
    }

    private readonly List<GpuBenchOp> _planned = [];

    /// <summary>
    /// Declares the ops a benchmark will report, before its setup (building a model, allocating gigabytes) can fail:
    /// if it then throws, each op it did not reach gets a row with the reason, so the table still has its line.
    /// </summary>
    public void Plan(params GpuBenchOp[] ops) => _planned.AddRange(ops);

    /// <summary>The planned ops that have no row yet (cleared by the call).</summary>
    internal IReadOnlyList<GpuBenchOp> TakeUnreported()
    {
        var left = _planned.ToArray();
        _planned.Clear();
        return left;
    }

    private (string, object?)[] Metrics(GpuBenchOp op, GpuBenchTiming t)
    {
        var m = new List<(string, object?)>();
        double s = t.MedianMs / 1e3;
        if (op.Flops > 0) m.Add(("tflops", op.Flops / s / 1e12));
        if (op.Bytes > 0)
        {
            double gbps = op.Bytes / s / 1e9;
            m.Add(("gbps", gbps));
            if (op.VersusCopy && CopyGbps is { } c) m.Add(("of_copy", gbps / c));
        }
        if (op.Tokens > 0) m.Add(("tokens_per_s", op.Tokens / s));
        if (op.Derived != null) m.AddRange(op.Derived(s));
        return m.ToArray();
    }

    // ---------------------------------------------------------------- buffers

    /// <summary>n floats uniform in [lo, hi) on the device.</summary>
    public float* Floats(long n, float lo = -1f, float hi = 1f, int seed = 1)
    {
        var b = Allocate(n * sizeof(float));
        int chunk = (int)Math.Min(n, 1 << 20);
        var host = new float[Math.Max(chunk, 1)];
        var rng = new Random(seed);
        for (int i = 0; i < chunk; i++) host[i] = lo + (hi - lo) * (float)rng.NextDouble();
        fixed (float* h = host) FillByDoubling(b.Pointer, (byte*)h, (long)chunk * sizeof(float), n * sizeof(float));
        return (float*)b.Pointer;
    }

    /// <summary>n bf16 values (raw bits) uniform in [lo, hi) on the device, rounded on the host.</summary>
    public ushort* Bf16(long n, float lo = -1f, float hi = 1f, int seed = 1)
    {
        var b = Allocate(n * sizeof(ushort));
        int chunk = (int)Math.Min(n, 1 << 20);
        var host = new float[Math.Max(chunk, 1)];
        var bits = new ushort[host.Length];
        var rng = new Random(seed);
        for (int i = 0; i < chunk; i++) host[i] = lo + (hi - lo) * (float)rng.NextDouble();
        fixed (float* h = host)
        fixed (ushort* o = bits)
        {
            ReferenceKernels.Instance.FloatToBFloat16(h, o, chunk);
            FillByDoubling(b.Pointer, (byte*)o, (long)chunk * sizeof(ushort), n * sizeof(ushort));
        }
        return (ushort*)b.Pointer;
    }

    /// <summary>A device copy of a host array.</summary>
    public T* Upload<T>(T[] host) where T : unmanaged
    {
        var b = Allocate((long)host.Length * sizeof(T));
        fixed (T* h = host) Memory.CopyFromHost(h, b.Pointer, (long)host.Length * sizeof(T));
        return (T*)b.Pointer;
    }

    /// <summary>n elements of uninitialised device memory (outputs).</summary>
    public T* Empty<T>(long n) where T : unmanaged => (T*)Allocate(n * sizeof(T)).Pointer;

    private NativeBuffer Allocate(long bytes)
    {
        var b = Memory.Allocate(Math.Max(bytes, 4));
        _buffers.Add(b);
        return b;
    }

    /// <summary>
    /// Random data without generating all of it on the host: the first chunk is uploaded, then copied onto the
    /// next region, doubling each time (log₂ device copies). Periodic data times like random data; zeros do not.
    /// </summary>
    private void FillByDoubling(byte* dst, byte* hostChunk, long chunkBytes, long totalBytes)
    {
        if (totalBytes <= 0) return;
        Memory.CopyFromHost(hostChunk, dst, Math.Min(chunkBytes, totalBytes));
        long have = Math.Min(chunkBytes, totalBytes);
        while (have < totalBytes)
        {
            long n = Math.Min(have, totalBytes - have);
            Memory.Copy(dst, dst + have, n);
            have += n;
        }
    }

    /// <summary>Frees the buffers of the benchmark that just ran (and, on CUDA, returns the cached blocks to the driver).</summary>
    public void ReleaseBuffers()
    {
        Timer.Synchronize();
        foreach (var b in _buffers) b.Release();
        _buffers.Clear();
        if (Memory is CudaMemory cm) cm.EmptyCache();
    }

    public void Dispose()
    {
        ReleaseBuffers();
        Timer.Dispose();
    }
}
