// Source: ggml's supports_op (ggml-backend.c): ops a backend lacks run on the CPU path.
using System.Runtime.CompilerServices;
using NativeReasoner.Kernels.Memory;
using NativeReasoner.Kernels.Quant;

namespace NativeReasoner.Kernels.Fallback;

/// <summary>
/// The supports-op dispatch for the optional ops (ggml's supports_op): a backend declares an optional op by
/// implementing its capability interface (<see cref="IGqaDecodeAttention"/>, ...); callers ask here instead of
/// casting, and a backend that lacks the op gets a host fallback that copies its inputs to host memory, runs the
/// op on the CPU backend (itself checked against the reference) and copies the outputs back. The first use of a
/// fallback on a backend prints one warning, so a new op can land on the CPU first and the GPU backends still
/// run it (slowly) until their own kernel exists.
/// </summary>
public static class KernelFallback
{
    // One fallback per backend instance, so its once-only warning is shown once per backend per process.
    private static readonly ConditionalWeakTable<IKernels, HostGqaDecodeAttention> s_gqaDecode = new();
    private static readonly ConditionalWeakTable<IKernels, HostQuantizedMatMul> s_quantized = new();

    /// <summary>Where the once-per-backend warnings go (standard error unless a host program redirects it).</summary>
    public static Action<string> Warn { get; set; } = message => Console.Error.WriteLine(message);

    /// <summary>True when <paramref name="kernels"/> has its own kernel for the optional op.</summary>
    public static bool Supports(IKernels kernels, OptionalOp op) => op switch
    {
        OptionalOp.GqaDecodeAttention => kernels is IGqaDecodeAttention,
        OptionalOp.MultiTensorAdamW => kernels is IMultiTensorAdamW,
        OptionalOp.GrpoTokenLoss => kernels is IGrpoTokenLoss,
        OptionalOp.QuantizedMatMul => kernels is IQuantizedMatMul,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "not an optional op"),
    };

    /// <summary>
    /// Batched grouped-query decode on <paramref name="kernels"/>: its own kernel when it has one, else the host
    /// fallback (pointers are the backend's, in <paramref name="memory"/>).
    /// </summary>
    public static IGqaDecodeAttention GqaDecode(IKernels kernels, IDeviceMemory memory)
    {
        if (kernels is IGqaDecodeAttention own) return own;
        return s_gqaDecode.GetValue(kernels, k => new HostGqaDecodeAttention(k.Name, memory, message => Warn(message)));
    }

    /// <summary>
    /// Products with packed weights on <paramref name="kernels"/>: its own kernel when it has one, else the host
    /// fallback (pointers are the backend's, in <paramref name="memory"/>).
    /// </summary>
    public static IQuantizedMatMul QuantizedMatMul(IKernels kernels, IDeviceMemory memory)
    {
        if (kernels is IQuantizedMatMul own) return own;
        return s_quantized.GetValue(kernels, k => new HostQuantizedMatMul(k.Name, memory, message => Warn(message)));
    }

    /// <summary>The warning a fallback prints the first time it runs on a backend.</summary>
    internal static string WarningText(string backend, OptionalOp op) =>
        $"warning: backend '{backend}' has no {op} kernel; running it on the CPU backend through host memory " +
        "(inputs copied to the host and outputs back: correct but slow). Shown once per backend.";
}

/// <summary>Optional ops: a backend may lack them; <see cref="KernelFallback"/> says which it has.</summary>
public enum OptionalOp
{
    /// <summary><see cref="IGqaDecodeAttention"/>: batched grouped-query attention decode; host fallback.</summary>
    GqaDecodeAttention,

    /// <summary>
    /// <see cref="IMultiTensorAdamW"/>: its fallback is one <see cref="IKernels.AdamWStep"/> per tensor.
    /// </summary>
    MultiTensorAdamW,

    /// <summary><see cref="IGrpoTokenLoss"/>: its fallback is the unfused GRPO loss built from tensor ops.</summary>
    GrpoTokenLoss,

    /// <summary><see cref="IQuantizedMatMul"/>: products with packed (bf16, Q8_0, Q4_0, Q4_K, Q6_K) weights; host
    /// fallback.</summary>
    QuantizedMatMul,
}
