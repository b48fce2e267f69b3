using ILGPU.Runtime;
using NativeReasoner.Kernels.Ilgpu;

namespace NativeReasoner;

/// <summary>
/// The ILGPU device: created on first use (that compiles nothing yet, but does create the ILGPU context and
/// accelerator, which takes a moment), then registered so that <see cref="Device.Parse"/> finds it as "ilgpu"
/// and as "ilgpu:&lt;accelerator&gt;" ("ilgpu:cpu", "ilgpu:cuda", "ilgpu:opencl").
/// The accelerator is chosen by <see cref="IlgpuBackend"/> (NR_ILGPU_ACCELERATOR, else best GPU, else CPU).
/// </summary>
public static class IlgpuDevice
{
    private static readonly Lazy<Device> s_device = new(() =>
    {
        var backend = IlgpuBackend.Shared;
        var device = new Device(DeviceType.Ilgpu, "ilgpu", backend.Memory, backend.Kernels);
        Device.Register(device, "ilgpu:" + AcceleratorName(backend.Accelerator.AcceleratorType));
        return device;
    });

    /// <summary>The process-wide ILGPU device.</summary>
    public static Device Get() => s_device.Value;

    /// <summary>True once the device exists (nothing is started by asking).</summary>
    public static bool IsCreated => s_device.IsValueCreated;

    /// <summary>The backend behind the device (accelerator, memory, kernels).</summary>
    public static IlgpuBackend Backend => IlgpuBackend.Shared;

    private static string AcceleratorName(AcceleratorType t) => t switch
    {
        AcceleratorType.CPU => "cpu",
        AcceleratorType.Cuda => "cuda",
        AcceleratorType.OpenCL => "opencl",
        _ => t.ToString().ToLowerInvariant(),
    };
}
