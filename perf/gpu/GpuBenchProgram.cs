namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// `nr-gpubench [--device D] [--json] [--smoke] [--bf16] [--only NAME[,NAME]...] [--list] [--compile]`: the device
/// benchmarks of <see cref="GpuBenchCatalog"/>, run by <see cref="GpuBenchRunner"/>; --compile instead compiles every
/// CUDA kernel file for the card (<see cref="GpuBenchCompile"/>). The options are few and flat, so they are
/// read by hand rather than through a command-line library the GPU pack would then carry twice.
/// </summary>
public static class GpuBenchProgram
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Parses <paramref name="args"/> and runs; exit code 2 with a message naming a wrong option.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        string device = "cuda";
        bool json = false, smoke = false, list = false, bf16 = false, compile = false;
        var only = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--json": json = true; break;
                case "--smoke": smoke = true; break;
                case "--list": list = true; break;
                case "--bf16": bf16 = true; break;
                case "--compile": compile = true; break;
                case "--device" or "--only":
                    if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                    {
                        error.WriteLine($"nr-gpubench: {args[i]} needs a value (a device name such as cuda, " +
                                        "cuda:emu, cpu; or a benchmark name)");
                        return 2;
                    }
                    if (args[i] == "--device") device = args[++i];
                    else only.AddRange(args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries));
                    break;
                case "-h" or "--help":
                    output.WriteLine(Usage);
                    return 0;
                default:
                    error.WriteLine($"nr-gpubench: unknown argument '{args[i]}'; expected one of --device, --json, " +
                                    "--smoke, --bf16, --only, --list, --compile, --help");
                    return 2;
            }
        }
        if (list)
        {
            foreach (var b in GpuBenchCatalog.All) output.WriteLine($"{b.Name,-16} {b.What}");
            return 0;
        }
        if (compile) return GpuBenchCompile.Run(device, json, output, error);
        return GpuBenchRunner.Run(device, smoke, json, only, output, error, bf16);
    }

    private static string Usage =>
        "nr-gpubench: device benchmarks (CUDA events on CUDA devices; warm-up, >= 10 runs, median): copy ceiling, " +
        "GEMM, memory-bound kernels, attention, MLA decode, MoE layer, training step.\n" +
        "  --device D     cuda (default), cuda:emu (the CPU emulator), cpu, ...\n" +
        "  --json         one JSON object per line (a device line, then one per op)\n" +
        "  --smoke        tiny sizes: checks the harness in seconds; the numbers mean nothing\n" +
        "  --bf16         the model benchmarks (train, train_dense, decode) under bf16 autocast\n" +
        "  --compile      only compile (NVRTC) and load every CUDA kernel file, one row per file, and exit\n" +
        "  --only NAMES   only these benchmarks (a name or its prefix; repeat or comma-separate): " +
        string.Join(", ", GpuBenchCatalog.All.Select(b => b.Name)) + "\n" +
        "  --list         list the benchmarks and what each measures";
}
