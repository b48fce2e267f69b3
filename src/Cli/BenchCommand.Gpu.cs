using System.CommandLine;

namespace NativeReasoner.Cli;

public static partial class BenchCommand
{
    /// <summary>`nr bench gpu`: the device benchmarks of the CUDA issues (see <see cref="GpuBenchRunner"/>).</summary>
    private static Command BuildGpu()
    {
        var device = new Option<string>("--device")
        {
            Description = "Device: cuda (the GPU), cuda:emu (the CPU emulator), cpu, ...", DefaultValueFactory = _ => "cuda",
        };
        var json = new Option<bool>("--json") { Description = "One JSON object per line on stdout (a device line, then one per op)." };
        var smoke = new Option<bool>("--smoke") { Description = "Tiny sizes: checks the harness in seconds on cpu / cuda:emu; the numbers mean nothing." };
        var only = new Option<string[]>("--only")
        {
            Description = "Run only these benchmarks (a name or its prefix; repeat or comma-separate): " +
                          string.Join(", ", GpuBenchCatalog.All.Select(b => b.Name)) + ".",
            AllowMultipleArgumentsPerToken = true,
        };
        var list = new Option<bool>("--list") { Description = "List the benchmarks and what each measures." };
        var command = new Command("gpu", "Device benchmarks (CUDA events on CUDA devices; warm-up, ≥ 10 runs, median): copy ceiling, GEMM, " +
                                         "memory-bound kernels, attention, MLA decode, MoE layer, training step.")
        {
            device, json, smoke, only, list,
        };
        command.SetAction(parse =>
        {
            if (parse.GetValue(list))
            {
                foreach (var b in GpuBenchCatalog.All) Console.WriteLine($"{b.Name,-16} {b.What}");
                return 0;
            }
            return GpuBenchRunner.Run(parse.GetValue(device)!, parse.GetValue(smoke), parse.GetValue(json), parse.GetValue(only) ?? [],
                Console.Out, Console.Error);
        });
        return command;
    }

    /// <summary>For tests: the runner with explicit streams.</summary>
    public static int RunGpu(string device, bool smoke, bool json, IReadOnlyList<string> only, TextWriter output, TextWriter error) =>
        GpuBenchRunner.Run(device, smoke, json, only, output, error);
}
