using System.Globalization;
using NativeReasoner.Cli;

namespace NativeReasoner.Perf.Gpu;

/// <summary>
/// What one measured op is: its name, shape and dtype (the key perf/gpu/compare_table.py matches with the PyTorch
/// anchors), and the work one call does, from which the rate is computed: <see cref="Flops"/> → TFLOP/s,
/// <see cref="Bytes"/> (the fewest bytes the op must move: each input read once, each output written once) → GB/s,
/// <see cref="Tokens"/> → tokens/s. <see cref="Extra"/> holds op-specific fields (copied into the JSON line).
/// </summary>
internal sealed record GpuBenchOp(string Op, int[] Shape, string DType)
{
    public double Flops { get; init; }
    public double Bytes { get; init; }
    public double Tokens { get; init; }

    /// <summary>Also report GB/s as a fraction of the measured copy bandwidth ("of_copy").</summary>
    public bool VersusCopy { get; init; }

    public (string Key, object? Value)[] Extra { get; init; } = [];

    /// <summary>Fields computed from the measured median seconds per call (MFU, say); appended after the rates.</summary>
    public Func<double, (string Key, object? Value)[]>? Derived { get; init; }
}

/// <summary>The outcome of one op: "ok" with its timing, or "not_implemented" / "unsupported" / "error" with the reason.</summary>
internal sealed record GpuBenchRow(GpuBenchOp Op, string Status, GpuBenchTiming? Timing, string? Error,
    (string Key, object? Value)[] Metrics)
{
    public const string Ok = "ok";
    /// <summary>The backend's placeholder threw NotImplementedException: the kernel is not written yet.</summary>
    public const string NotImplemented = "not_implemented";
    /// <summary>The op does not exist on this device (the CUDA-only bf16 flash attention and MLA decode on the CPU).</summary>
    public const string Unsupported = "unsupported";
    public const string Failed = "error";

    public string ToJson(string device)
    {
        var f = new List<(string, object?)>
        {
            ("op", Op.Op), ("impl", "ours"), ("device", device), ("shape", Op.Shape), ("dtype", Op.DType), ("status", Status),
        };
        if (Timing is { } t)
        {
            f.Add(("ms", t.MedianMs));
            f.AddRange(Metrics);
            f.Add(("min_ms", t.MinMs));
            f.Add(("reps", t.Reps));
            f.Add(("timer", t.Timer));
        }
        f.AddRange(Op.Extra);
        if (Error != null) f.Add(("error", Error));
        return JsonLine.Object(f.ToArray());
    }

    public string ToText()
    {
        string shape = "[" + string.Join(",", Op.Shape) + "]";
        string head = $"{Op.Op,-24} {shape,-28} {Op.DType,-5}";
        if (Timing is not { } t) return $"{head} {Status}: {Error}";
        var parts = Metrics.Select(m => m.Value switch
        {
            double d => $"{m.Key} {d.ToString(d >= 100 ? "F1" : "G4", CultureInfo.InvariantCulture)}",
            _ => $"{m.Key} {m.Value}",
        });
        return $"{head} {t.MedianMs,10:F3} ms  {string.Join(", ", parts)}  ({t.Reps} reps)";
    }
}
