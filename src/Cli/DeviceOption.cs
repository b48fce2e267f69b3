using System.CommandLine;

namespace NativeReasoner.Cli;

/// <summary>
/// The `--device` option of the commands that build or load a model: cpu (default), reference, ilgpu[:cpu|cuda|opencl],
/// cuda (the first NVIDIA GPU) or cuda:emu (the CUDA kernels on the CPU emulator). The chosen device becomes the
/// default of the command's flow (<see cref="Device.UseDefault"/>), so the model, its inputs and every
/// intermediate live there.
/// </summary>
public static class DeviceOption
{
    public static Option<string> Create() => new("--device")
    {
        Description = "Where the model runs: cpu (default), reference, ilgpu, cuda, cuda:emu.",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>Resolves the name (a clear error when unknown or unavailable) and makes it the default until disposed.</summary>
    public static DeviceScope Use(string name) => new(Device.Parse(name));

    public sealed class DeviceScope : IDisposable
    {
        private readonly IDisposable _scope;

        internal DeviceScope(Device device)
        {
            Device = device;
            _scope = Device.UseDefault(device);
        }

        public Device Device { get; }

        public void Dispose() => _scope.Dispose();
    }
}
