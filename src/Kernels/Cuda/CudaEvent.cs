// Source: the CUDA Driver API reference (cuInit, cuModuleLoadData, cuLaunchKernel, events) and NVRTC.
namespace NativeReasoner.Kernels.Cuda;

/// <summary>A CUDA event on the backend's stream, for timing launches the way the GPU sees them.</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private readonly CudaBackend _backend;
    private IntPtr _event;

    public CudaEvent(CudaBackend backend)
    {
        _backend = backend;
        backend.MakeCurrent();
        IntPtr e;
        backend.Check(backend.Api.cuEventCreate(&e, Native.CudaConstants.EventDefault));
        _event = e;
    }

    /// <summary>Records the event after everything queued so far.</summary>
    public void Record()
    {
        _backend.MakeCurrent();
        _backend.Check(_backend.Api.cuEventRecord(_event, _backend.Stream));
    }

    /// <summary>Milliseconds between two recorded events (waits for the later one).</summary>
    public static float ElapsedMs(CudaEvent start, CudaEvent end)
    {
        var b = end._backend;
        b.MakeCurrent();
        b.Check(b.Api.cuEventSynchronize(end._event));
        float ms;
        b.Check(b.Api.cuEventElapsedTime(&ms, start._event, end._event));
        return ms;
    }

    public void Dispose()
    {
        if (_event == IntPtr.Zero) return;
        _backend.Api.cuEventDestroy_v2(_event);
        _event = IntPtr.Zero;
    }
}
