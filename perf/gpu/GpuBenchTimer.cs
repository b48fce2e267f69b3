using System.Diagnostics;
using NativeReasoner.Kernels.Cuda;

namespace NativeReasoner.Perf.Gpu;

/// <summary>Median and best of the measured calls, how many, and which clock ("cuda_event" or "stopwatch").</summary>
internal readonly record struct GpuBenchTiming(double MedianMs, double MinMs, int Reps, string Timer);

/// <summary>
/// Times one op the way the device sees it. On a CUDA device each call is bracketed by two CUDA events on the
/// backend's stream (launches are asynchronous: a host clock would time the queueing, not the kernels); elsewhere
/// a Stopwatch around the call followed by a synchronisation (the CPU kernels are synchronous; a non-host device
/// is waited for with a 4-byte read-back). Warm-up first (module load, NVRTC compilation, allocator growth, tiered
/// JIT stay out of the numbers), then at least <see cref="GpuBenchSizes.MinReps"/> calls and until the time budget
/// is spent; the median is the number reported (robust to the odd preempted call).
/// </summary>
internal sealed unsafe class GpuBenchTimer : IDisposable
{
    private readonly Device _device;
    private readonly GpuBenchSizes _sizes;
    private readonly CudaBackend? _cuda;
    private readonly CudaEvent? _start, _end;
    private Kernels.Memory.NativeBuffer? _probe;

    public GpuBenchTimer(Device device, GpuBenchSizes sizes)
    {
        _device = device;
        _sizes = sizes;
        if (device.Kernels is CudaKernels ck)
        {
            _cuda = ck.Backend;
            _start = new CudaEvent(_cuda);
            _end = new CudaEvent(_cuda);
        }
    }

    public string Clock => _cuda != null ? "cuda_event" : "stopwatch";

    public GpuBenchTiming Time(Action run)
    {
        var wall = Stopwatch.StartNew();
        int warm = 0;
        while (warm < _sizes.WarmupCalls || wall.Elapsed.TotalMilliseconds < _sizes.WarmupMs)
        {
            run();
            Synchronize();
            warm++;
        }
        // Garbage of the setup should not be collected inside a timed call.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var samples = new List<double>(64);
        wall.Restart();
        while (samples.Count < _sizes.MinReps || (wall.Elapsed.TotalMilliseconds < _sizes.BudgetMs && samples.Count < _sizes.MaxReps))
            samples.Add(TimeOne(run));
        samples.Sort();
        int n = samples.Count;
        double median = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
        return new GpuBenchTiming(median, samples[0], n, Clock);
    }

    private double TimeOne(Action run)
    {
        if (_cuda != null)
        {
            _start!.Record();
            run();
            _end!.Record();
            return CudaEvent.ElapsedMs(_start, _end!);
        }
        long t0 = Stopwatch.GetTimestamp();
        run();
        Synchronize();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    /// <summary>Waits until everything queued on the device has finished.</summary>
    public void Synchronize()
    {
        if (_cuda != null)
        {
            _cuda.Synchronize();
            return;
        }
        if (_device.IsHost) return;
        _probe ??= _device.Memory.Allocate(4);
        int sink;
        _device.Memory.CopyToHost(_probe.Pointer, &sink, 4);
    }

    public void Dispose()
    {
        _start?.Dispose();
        _end?.Dispose();
        _probe?.Release();
        _probe = null;
    }
}
