using System.CommandLine;
using NativeReasoner.Kernels;

namespace NativeReasoner.Cli;

/// <summary>
/// The `--bf16` option of `train`, `pipeline`, `generate` and `serve` (bf16 mixed precision, <see cref="Autocast"/>),
/// and the kernel summary those commands print to stderr when they ran on a device with its own kernels (CUDA,
/// ILGPU): which kernels ran, by name, so a run shows whether it took the fast paths.
/// </summary>
public static class Bf16Option
{
    public static Option<bool> Create(bool training) => new("--bf16")
    {
        Description = training
            ? "bf16 mixed precision (as PyTorch AMP): linear layers in bf16 with fp32 accumulation, attention on the " +
              "bf16 flash kernels; norms, softmax, loss, master weights and AdamW state fp32. Needs --device cuda or " +
              "cuda:emu."
            : "bf16 matrix products with fp32 accumulation (autocast), and the bf16 flash attention kernels for the " +
              "prompt on CUDA; norms, softmax and sampling stay fp32.",
    };

    /// <summary>
    /// Opens the autocast scope when <paramref name="bf16"/> (after checking that <paramref name="device"/> has the
    /// path: training needs the bf16 flash-attention kernels) and starts counting kernel launches; disposing prints
    /// the count line "nr COMMAND: kernels: …" to stderr for a CUDA or ILGPU device.
    /// </summary>
    public static Scope Use(bool bf16, Device device, string command, bool training)
    {
        if (bf16 && training && device.Kernels is not IBf16FlashAttention)
            throw new NotSupportedException(
                $"--bf16 trains on the bf16 flash-attention kernels, which device '{device}' does not have; use " +
                "--device cuda (or cuda:emu, the CUDA kernels on the CPU emulator) or drop --bf16");
        return new Scope(bf16 ? Autocast.Bf16() : null, device, command);
    }

    public sealed class Scope : IDisposable
    {
        private readonly IDisposable? _autocast;
        private readonly IDisposable _recording;
        private readonly Device _device;
        private readonly string _command;
        private bool _done;

        internal Scope(IDisposable? autocast, Device device, string command)
        {
            _autocast = autocast;
            _device = device;
            _command = command;
            _recording = KernelDispatchCounters.Record(out var counters);
            Counters = counters;
        }

        /// <summary>The kernel launches of this command so far.</summary>
        public KernelDispatchCounters Counters { get; }

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            _recording.Dispose();
            _autocast?.Dispose();
            if (_device.Type is DeviceType.Cuda or DeviceType.Ilgpu)
                Console.Error.WriteLine(
                    $"nr {_command}: {(_autocast != null ? "bf16 autocast; " : "")}{Counters.Summary()}");
        }
    }
}
