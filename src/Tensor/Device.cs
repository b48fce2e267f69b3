using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner;

/// <summary>Kinds of device. Each device pairs a memory (<see cref="IDeviceMemory"/>) with an op set (<see cref="IKernels"/>).</summary>
public enum DeviceType
{
    /// <summary>Host memory, fast CPU kernels (SIMD, threaded).</summary>
    Cpu,
    /// <summary>Host memory, scalar reference kernels: the oracle that every other backend is compared with.</summary>
    Reference,
    /// <summary>NVIDIA GPU through the hand-written CUDA kernels.</summary>
    Cuda,
    /// <summary>ILGPU kernels (CUDA, OpenCL or ILGPU's CPU accelerator).</summary>
    Ilgpu,
}

/// <summary>
/// A device: where a tensor's memory lives and which kernels compute on it. CPU and Reference share host
/// memory, so moving between them is a plain copy. Other backends register their devices with
/// <see cref="Register"/>; then <see cref="Parse"/> finds them by name.
/// </summary>
public sealed class Device : IEquatable<Device>
{
    public static Device Cpu { get; } = new(DeviceType.Cpu, "cpu", HostMemory.Instance, CpuKernels.Instance);
    public static Device Reference { get; } = new(DeviceType.Reference, "reference", HostMemory.Instance, ReferenceKernels.Instance);

    /// <summary>The first NVIDIA GPU through the CUDA kernels, created (and registered) on first use.</summary>
    public static Device Cuda => CudaDevice.Get();

    /// <summary>The ILGPU device, created (and registered) on first use.</summary>
    public static Device Ilgpu => IlgpuDevice.Get();

    private static readonly Dictionary<string, Device> s_registry = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cpu"] = Cpu,
        ["reference"] = Reference,
        ["ref"] = Reference,
    };

    private static Device s_default = Cpu;
    private static readonly AsyncLocal<Device?> s_scopedDefault = new();

    /// <summary>
    /// The device new tensors go to when none is named: the innermost <see cref="UseDefault"/> scope of this
    /// async flow, else the process-wide value set here.
    /// </summary>
    public static Device Default
    {
        get => s_scopedDefault.Value ?? s_default;
        set => s_default = value;
    }

    /// <summary>
    /// Makes <paramref name="device"/> the default for this async flow (and the tasks it starts) until the scope is
    /// disposed; other threads keep theirs. Commands use it, so two of them in one process (tests) cannot clash.
    /// </summary>
    public static IDisposable UseDefault(Device device)
    {
        var previous = s_scopedDefault.Value;
        s_scopedDefault.Value = device;
        return new DefaultScope(previous);
    }

    private sealed class DefaultScope(Device? previous) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            s_scopedDefault.Value = previous;
        }
    }

    public DeviceType Type { get; }

    /// <summary>Name used on the command line and in messages ("cpu", "reference", "ilgpu:cpu", ...).</summary>
    public string Name { get; }

    public IKernels Kernels { get; }
    public IDeviceMemory Memory { get; }

    /// <summary>
    /// Batched grouped-query decode on this device: the backend's own kernel, or the host fallback of
    /// <see cref="NativeReasoner.Kernels.Fallback.KernelFallback"/> (one warning) on a backend that lacks it.
    /// </summary>
    public IGqaDecodeAttention GqaDecode => NativeReasoner.Kernels.Fallback.KernelFallback.GqaDecode(Kernels, Memory);

    /// <summary>True when the device's memory is ordinary host memory (readable through pointers).</summary>
    public bool IsHost => Memory.IsHost;

    public Device(DeviceType type, string name, IDeviceMemory memory, IKernels kernels)
    {
        Type = type;
        Name = name;
        Memory = memory;
        Kernels = kernels;
    }

    /// <summary>Makes a backend's device known to <see cref="Parse"/> under its name (and optional aliases).</summary>
    public static void Register(Device device, params string[] aliases)
    {
        lock (s_registry)
        {
            s_registry[device.Name] = device;
            foreach (var a in aliases) s_registry[a] = device;
        }
    }

    /// <summary>Finds a device by name ("cpu", "reference", or a registered backend's name).</summary>
    public static Device Parse(string name)
    {
        // The ILGPU device starts an accelerator, so it is created only when asked for by name.
        if (name.Trim().StartsWith("ilgpu", StringComparison.OrdinalIgnoreCase)) IlgpuDevice.Get();
        // Likewise a CUDA device opens the driver (or the emulator) only when named.
        if (name.Trim().StartsWith("cuda", StringComparison.OrdinalIgnoreCase)) CudaDevice.ForName(name);
        lock (s_registry)
        {
            if (s_registry.TryGetValue(name.Trim(), out var d)) return d;
            var known = string.Join(", ", s_registry.Keys.Order());
            if (name.Trim().StartsWith("cuda", StringComparison.OrdinalIgnoreCase) || name.Trim().StartsWith("ilgpu", StringComparison.OrdinalIgnoreCase))
                throw new NotSupportedException($"device '{name}' is not available in this process (known devices: {known})");
            throw new ArgumentException($"unknown device '{name}' (known devices: {known})", nameof(name));
        }
    }

    internal NativeBuffer Allocate(long bytes) => Memory.Allocate(bytes);

    public bool Equals(Device? other) => other is not null && ReferenceEquals(other, this);
    public override bool Equals(object? obj) => obj is Device d && Equals(d);
    public override int GetHashCode() => Name.GetHashCode(StringComparison.OrdinalIgnoreCase);
    public override string ToString() => Name;
}
