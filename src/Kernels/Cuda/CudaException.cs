// Source: the CUDA Driver API reference (cuInit, cuModuleLoadData, cuLaunchKernel, events) and NVRTC.
namespace NativeReasoner.Kernels.Cuda;

/// <summary>A CUDA driver or NVRTC call failed; the message names the call and the error.</summary>
public class CudaException : Exception
{
    public string Call { get; }
    public int Result { get; }

    public CudaException(string call, int result, string description)
        : base($"{call} failed: {description}")
    {
        Call = call;
        Result = result;
    }
}

/// <summary>No usable CUDA here (no driver, no NVRTC, no device, no emulator); the message says which.</summary>
public sealed class CudaUnavailableException : NotSupportedException
{
    public CudaUnavailableException(string message) : base(message) { }
}

/// <summary>NVRTC rejected a kernel source; the message holds the compile log.</summary>
public sealed class CudaCompileException : Exception
{
    public string Log { get; }

    public CudaCompileException(string file, string options, string log)
        : base($"NVRTC could not compile {file} ({options}):\n{log}") => Log = log;
}
