// Source: the CUDA Driver API reference (cuInit, cuModuleLoadData, cuLaunchKernel, events) and NVRTC.
using System.Runtime.InteropServices;

namespace NativeReasoner.Kernels.Cuda.Native;

/// <summary>
/// The CUDA driver API entry points the backend uses, bound from a loaded library (libcuda.so.1, or the CPU
/// emulator that exports the same names) as unmanaged function pointers. The <c>_v2</c> symbols are bound
/// where cuda.h maps the plain names to them. CUdeviceptr is a 64-bit integer; handles are opaque pointers.
/// </summary>
internal sealed unsafe class CudaDriverApi
{
    public readonly delegate* unmanaged<uint, int> cuInit;
    public readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    public readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    public readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem_v2;
    public readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public readonly delegate* unmanaged<IntPtr*, int, int> cuDevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease_v2;
    public readonly delegate* unmanaged<IntPtr, int> cuCtxSetCurrent;
    public readonly delegate* unmanaged<int> cuCtxSynchronize;
    public readonly delegate* unmanaged<int, byte**, int> cuGetErrorName;
    public readonly delegate* unmanaged<int, byte**, int> cuGetErrorString;

    public readonly delegate* unmanaged<ulong*, nuint, int> cuMemAlloc_v2;
    public readonly delegate* unmanaged<ulong, int> cuMemFree_v2;
    public readonly delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo_v2;
    public readonly delegate* unmanaged<void**, nuint, int> cuMemAllocHost_v2;
    public readonly delegate* unmanaged<void*, int> cuMemFreeHost;
    public readonly delegate* unmanaged<ulong, void*, nuint, int> cuMemcpyHtoD_v2;
    public readonly delegate* unmanaged<void*, ulong, nuint, int> cuMemcpyDtoH_v2;
    public readonly delegate* unmanaged<ulong, ulong, nuint, int> cuMemcpyDtoD_v2;
    public readonly delegate* unmanaged<ulong, void*, nuint, IntPtr, int> cuMemcpyHtoDAsync_v2;
    public readonly delegate* unmanaged<void*, ulong, nuint, IntPtr, int> cuMemcpyDtoHAsync_v2;
    public readonly delegate* unmanaged<ulong, ulong, nuint, IntPtr, int> cuMemcpyDtoDAsync_v2;
    public readonly delegate* unmanaged<ulong, byte, nuint, IntPtr, int> cuMemsetD8Async;
    public readonly delegate* unmanaged<ulong, uint, nuint, IntPtr, int> cuMemsetD32Async;

    public readonly delegate* unmanaged<IntPtr*, uint, int> cuStreamCreate;
    public readonly delegate* unmanaged<IntPtr, int> cuStreamDestroy_v2;
    public readonly delegate* unmanaged<IntPtr, int> cuStreamSynchronize;
    public readonly delegate* unmanaged<IntPtr*, uint, int> cuEventCreate;
    public readonly delegate* unmanaged<IntPtr, int> cuEventDestroy_v2;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> cuEventRecord;
    public readonly delegate* unmanaged<IntPtr, int> cuEventSynchronize;
    public readonly delegate* unmanaged<float*, IntPtr, IntPtr, int> cuEventElapsedTime;

    public readonly delegate* unmanaged<IntPtr*, void*, int> cuModuleLoadData;
    public readonly delegate* unmanaged<IntPtr, int> cuModuleUnload;
    public readonly delegate* unmanaged<IntPtr*, IntPtr, byte*, int> cuModuleGetFunction;
    public readonly delegate* unmanaged<IntPtr, int, int, int> cuFuncSetAttribute;
    public readonly delegate* unmanaged<int*, int, IntPtr, int> cuFuncGetAttribute;
    public readonly delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int> cuLaunchKernel;

    /// <summary>Only in the emulator: the message behind its last CUDA_ERROR_LAUNCH_FAILED.</summary>
    public readonly delegate* unmanaged<byte*> nr_emu_last_error;

    /// <summary>Only in the emulator: the thread order of the calling thread's launches (0 forward, 1 reverse, 2 random).</summary>
    public readonly delegate* unmanaged<int, ulong, void> nr_emu_set_schedule;

    public CudaDriverApi(IntPtr library, string libraryName)
    {
        IntPtr Get(string name) => NativeLibrary.TryGetExport(library, name, out var p)
            ? p
            : throw new CudaUnavailableException($"{libraryName} does not export {name} (a CUDA driver older than 12.0?)");

        cuInit = (delegate* unmanaged<uint, int>)Get("cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)Get("cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)Get("cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)Get("cuDeviceGet");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)Get("cuDeviceGetName");
        cuDeviceTotalMem_v2 = (delegate* unmanaged<nuint*, int, int>)Get("cuDeviceTotalMem_v2");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Get("cuDeviceGetAttribute");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<IntPtr*, int, int>)Get("cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease_v2 = (delegate* unmanaged<int, int>)Get("cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = (delegate* unmanaged<IntPtr, int>)Get("cuCtxSetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)Get("cuCtxSynchronize");
        cuGetErrorName = (delegate* unmanaged<int, byte**, int>)Get("cuGetErrorName");
        cuGetErrorString = (delegate* unmanaged<int, byte**, int>)Get("cuGetErrorString");

        cuMemAlloc_v2 = (delegate* unmanaged<ulong*, nuint, int>)Get("cuMemAlloc_v2");
        cuMemFree_v2 = (delegate* unmanaged<ulong, int>)Get("cuMemFree_v2");
        cuMemGetInfo_v2 = (delegate* unmanaged<nuint*, nuint*, int>)Get("cuMemGetInfo_v2");
        cuMemAllocHost_v2 = (delegate* unmanaged<void**, nuint, int>)Get("cuMemAllocHost_v2");
        cuMemFreeHost = (delegate* unmanaged<void*, int>)Get("cuMemFreeHost");
        cuMemcpyHtoD_v2 = (delegate* unmanaged<ulong, void*, nuint, int>)Get("cuMemcpyHtoD_v2");
        cuMemcpyDtoH_v2 = (delegate* unmanaged<void*, ulong, nuint, int>)Get("cuMemcpyDtoH_v2");
        cuMemcpyDtoD_v2 = (delegate* unmanaged<ulong, ulong, nuint, int>)Get("cuMemcpyDtoD_v2");
        cuMemcpyHtoDAsync_v2 = (delegate* unmanaged<ulong, void*, nuint, IntPtr, int>)Get("cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync_v2 = (delegate* unmanaged<void*, ulong, nuint, IntPtr, int>)Get("cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync_v2 = (delegate* unmanaged<ulong, ulong, nuint, IntPtr, int>)Get("cuMemcpyDtoDAsync_v2");
        cuMemsetD8Async = (delegate* unmanaged<ulong, byte, nuint, IntPtr, int>)Get("cuMemsetD8Async");
        cuMemsetD32Async = (delegate* unmanaged<ulong, uint, nuint, IntPtr, int>)Get("cuMemsetD32Async");

        cuStreamCreate = (delegate* unmanaged<IntPtr*, uint, int>)Get("cuStreamCreate");
        cuStreamDestroy_v2 = (delegate* unmanaged<IntPtr, int>)Get("cuStreamDestroy_v2");
        cuStreamSynchronize = (delegate* unmanaged<IntPtr, int>)Get("cuStreamSynchronize");
        cuEventCreate = (delegate* unmanaged<IntPtr*, uint, int>)Get("cuEventCreate");
        cuEventDestroy_v2 = (delegate* unmanaged<IntPtr, int>)Get("cuEventDestroy_v2");
        cuEventRecord = (delegate* unmanaged<IntPtr, IntPtr, int>)Get("cuEventRecord");
        cuEventSynchronize = (delegate* unmanaged<IntPtr, int>)Get("cuEventSynchronize");
        // CUDA 13 maps cuEventElapsedTime to _v2; drivers before 12.8 have only the plain name.
        cuEventElapsedTime = NativeLibrary.TryGetExport(library, "cuEventElapsedTime_v2", out var et)
            ? (delegate* unmanaged<float*, IntPtr, IntPtr, int>)et
            : (delegate* unmanaged<float*, IntPtr, IntPtr, int>)Get("cuEventElapsedTime");

        cuModuleLoadData = (delegate* unmanaged<IntPtr*, void*, int>)Get("cuModuleLoadData");
        cuModuleUnload = (delegate* unmanaged<IntPtr, int>)Get("cuModuleUnload");
        cuModuleGetFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)Get("cuModuleGetFunction");
        cuFuncSetAttribute = (delegate* unmanaged<IntPtr, int, int, int>)Get("cuFuncSetAttribute");
        cuFuncGetAttribute = (delegate* unmanaged<int*, int, IntPtr, int>)Get("cuFuncGetAttribute");
        cuLaunchKernel = (delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int>)Get("cuLaunchKernel");

        nr_emu_last_error = NativeLibrary.TryGetExport(library, "nr_emu_last_error", out var le) ? (delegate* unmanaged<byte*>)le : null;
        nr_emu_set_schedule = NativeLibrary.TryGetExport(library, "nr_emu_set_schedule", out var ss) ? (delegate* unmanaged<int, ulong, void>)ss : null;
    }

    /// <summary>"CUDA_ERROR_OUT_OF_MEMORY (out of memory)" for a CUresult.</summary>
    public string Describe(int result)
    {
        byte* name = null, text = null;
        string n = cuGetErrorName(result, &name) == 0 && name != null ? Marshal.PtrToStringUTF8((IntPtr)name)! : $"CUresult {result}";
        string t = cuGetErrorString(result, &text) == 0 && text != null ? Marshal.PtrToStringUTF8((IntPtr)text)! : "unknown error";
        string s = $"{n} ({t})";
        if (nr_emu_last_error != null && result == CudaConstants.ErrorLaunchFailed)
            s += ": " + Marshal.PtrToStringUTF8((IntPtr)nr_emu_last_error());
        return s;
    }
}

/// <summary>The enum values of cuda.h the backend uses.</summary>
internal static class CudaConstants
{
    public const int Success = 0;
    public const int ErrorOutOfMemory = 2;
    public const int ErrorLaunchFailed = 719;

    public const int AttrMaxThreadsPerBlock = 1;
    public const int AttrMaxSharedMemoryPerBlock = 8;
    public const int AttrWarpSize = 10;
    public const int AttrClockRate = 13;
    public const int AttrMultiprocessorCount = 16;
    public const int AttrMemoryClockRate = 36;
    public const int AttrGlobalMemoryBusWidth = 37;
    public const int AttrL2CacheSize = 38;
    public const int AttrComputeCapabilityMajor = 75;
    public const int AttrComputeCapabilityMinor = 76;
    public const int AttrMaxSharedMemoryPerBlockOptin = 97;

    public const int FuncAttrMaxDynamicSharedSizeBytes = 8;

    public const uint EventDefault = 0;
    public const uint EventDisableTiming = 2;
    public const uint StreamNonBlocking = 1;
}
