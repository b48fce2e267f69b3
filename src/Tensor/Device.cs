using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cpu;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Reference;

namespace NativeReasoner;

/// <summary>Where a tensor's memory lives and which kernels compute on it.</summary>
public enum DeviceType
{
    /// <summary>Host memory, fast CPU kernels (SIMD, threaded).</summary>
    Cpu,
    /// <summary>Host memory, scalar reference kernels: the oracle that every other backend is compared with.</summary>
    Reference,
}

/// <summary>
/// A device tag. CPU and Reference share host memory, so moving between them is a plain copy; GPU devices
/// (CUDA, ILGPU) will add their own memory and kernels behind the same <see cref="IKernels"/> op set.
/// </summary>
public sealed class Device : IEquatable<Device>
{
    public static Device Cpu { get; } = new(DeviceType.Cpu, CpuKernels.Instance);
    public static Device Reference { get; } = new(DeviceType.Reference, ReferenceKernels.Instance);

    /// <summary>The device new tensors go to when none is named.</summary>
    public static Device Default { get; set; } = Cpu;

    public DeviceType Type { get; }
    public IKernels Kernels { get; }

    /// <summary>True when the device's memory is ordinary host memory (readable through pointers).</summary>
    public bool IsHost => true;

    private Device(DeviceType type, IKernels kernels)
    {
        Type = type;
        Kernels = kernels;
    }

    /// <summary>Parses "cpu" or "reference" (case-insensitive).</summary>
    public static Device Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cpu" => Cpu,
        "reference" or "ref" => Reference,
        "cuda" or "ilgpu" => throw new NotSupportedException(
            $"device '{name}' is not available in this build (known devices: cpu, reference)"),
        _ => throw new ArgumentException($"unknown device '{name}' (known devices: cpu, reference)", nameof(name)),
    };

    internal NativeBuffer Allocate(long bytes) => BufferPool.Shared.Rent(bytes);

    public bool Equals(Device? other) => other is not null && other.Type == Type;
    public override bool Equals(object? obj) => obj is Device d && Equals(d);
    public override int GetHashCode() => (int)Type;
    public override string ToString() => Type.ToString().ToLowerInvariant();
}
