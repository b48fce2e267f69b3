// Source: the NVRTC API reference (nvrtcCreateProgram, nvrtcCompileProgram, nvrtcGetCUBIN).
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Cuda.Native;

/// <summary>The NVRTC entry points the backend uses, bound from libnvrtc.so.13 / .12 (or the emulator).</summary>
internal sealed unsafe class NvrtcApi
{
    public readonly delegate* unmanaged<int, byte*> nvrtcGetErrorString;
    public readonly delegate* unmanaged<int*, int*, int> nvrtcVersion;
    public readonly delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    public readonly delegate* unmanaged<IntPtr*, int> nvrtcDestroyProgram;
    public readonly delegate* unmanaged<IntPtr, int, byte**, int> nvrtcCompileProgram;
    public readonly delegate* unmanaged<IntPtr, nuint*, int> nvrtcGetProgramLogSize;
    public readonly delegate* unmanaged<IntPtr, byte*, int> nvrtcGetProgramLog;
    public readonly delegate* unmanaged<IntPtr, nuint*, int> nvrtcGetCUBINSize;
    public readonly delegate* unmanaged<IntPtr, byte*, int> nvrtcGetCUBIN;

    public string LibraryName { get; }

    public NvrtcApi(IntPtr library, string libraryName)
    {
        LibraryName = libraryName;
        IntPtr Get(string name) => NativeLibrary.TryGetExport(library, name, out var p)
            ? p
            : throw new CudaUnavailableException($"{libraryName} does not export {name}");
        nvrtcGetErrorString = (delegate* unmanaged<int, byte*>)Get("nvrtcGetErrorString");
        nvrtcVersion = (delegate* unmanaged<int*, int*, int>)Get("nvrtcVersion");
        nvrtcCreateProgram = (delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int>)Get("nvrtcCreateProgram");
        nvrtcDestroyProgram = (delegate* unmanaged<IntPtr*, int>)Get("nvrtcDestroyProgram");
        nvrtcCompileProgram = (delegate* unmanaged<IntPtr, int, byte**, int>)Get("nvrtcCompileProgram");
        nvrtcGetProgramLogSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get("nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = (delegate* unmanaged<IntPtr, byte*, int>)Get("nvrtcGetProgramLog");
        nvrtcGetCUBINSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get("nvrtcGetCUBINSize");
        nvrtcGetCUBIN = (delegate* unmanaged<IntPtr, byte*, int>)Get("nvrtcGetCUBIN");
    }

    public string Describe(int result) => Marshal.PtrToStringUTF8((IntPtr)nvrtcGetErrorString(result)) ?? $"nvrtcResult {result}";

    /// <summary>"13.0" (the emulator reports 0.1).</summary>
    public string Version()
    {
        int major, minor;
        return nvrtcVersion(&major, &minor) == 0 ? $"{major}.{minor}" : "unknown";
    }
}
