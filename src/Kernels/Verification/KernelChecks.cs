// Source: ggml's test-backend-ops: every backend op checked against a reference at awkward sizes.
using System.Diagnostics;
using NativeReasoner.Kernels.Memory;

namespace NativeReasoner.Kernels.Verification;

/// <summary>
/// The conformance suite: every <see cref="IKernels"/> op at awkward sizes (1, odd, prime, larger than a tile)
/// against the reference. Families add their checks in the partial files (KernelChecks.Elementwise.cs, ...).
/// </summary>
public static unsafe partial class KernelChecks
{
    private static readonly Lazy<IReadOnlyList<KernelCheck>> s_all = new(() =>
    {
        var list = new List<KernelCheck>();
        AddMemory(list);
        AddElementwise(list);
        AddRows(list);
        AddGemm(list);
        AddAttention(list);
        AddAttentionGqa(list);
        AddGqaDecode(list);
        AddMoe(list);
        AddAttentionBf16(list);
        AddQuantized(list);
        var dup = list.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new InvalidOperationException($"two kernel checks are named {dup.Key}");
        return list;
    });

    /// <summary>Every check, in a stable order.</summary>
    public static IReadOnlyList<KernelCheck> All => s_all.Value;

    public static KernelCheck Get(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no kernel check named '{name}'");

    /// <summary>Runs one check on a backend with a seed derived from its name (fresh inputs per check, reproducible).</summary>
    public static KernelCheckResult Run(KernelCheck check, IKernels kernels, IDeviceMemory memory, int seedOffset = 0)
    {
        var sw = Stopwatch.StartNew();
        using var ctx = new KernelCheckContext(kernels, memory, StableHash(check.Name) + seedOffset);
        try
        {
            check.Run(ctx);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new KernelCheckResult(check.Name, false, double.PositiveInfinity, [$"threw {e.GetType().Name}: {e.Message}"], sw.Elapsed.TotalMilliseconds);
        }
        bool ok = ctx.Failures.Count == 0;
        return new KernelCheckResult(check.Name, ok, ctx.WorstError, ctx.Failures.ToArray(),
            sw.Elapsed.TotalMilliseconds, ctx.Fallback);
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = (int)2166136261;
            foreach (char c in s) h = (h ^ c) * 16777619;
            return h & 0x7fffffff;
        }
    }

    static partial void AddElementwise(List<KernelCheck> list);
    static partial void AddRows(List<KernelCheck> list);
    static partial void AddGemm(List<KernelCheck> list);
    static partial void AddAttention(List<KernelCheck> list);
    static partial void AddAttentionGqa(List<KernelCheck> list);
    static partial void AddGqaDecode(List<KernelCheck> list);
    static partial void AddMoe(List<KernelCheck> list);
    static partial void AddAttentionBf16(List<KernelCheck> list);
    static partial void AddQuantized(List<KernelCheck> list);

    private static void AddMemory(List<KernelCheck> list)
    {
        foreach (int n in new[] { 1, 7, 1031, 70001 })
            list.Add(new KernelCheck($"memory/fill/{n}", ctx =>
            {
                float* y = ctx.Garbage<float>(n);
                ctx.K.Fill(y, n, -2.5f);
                var expected = new float[n];
                Array.Fill(expected, -2.5f);
                ctx.Exact<float>(ctx.Down(y, n), expected, "fill");
            }));
        foreach (int n in new[] { 1, 37, 4099 })
            list.Add(new KernelCheck($"memory/roundtrip/{n}", ctx =>
            {
                var x = ctx.Rand(n);
                float* d = ctx.Up(x);
                float* e = ctx.Garbage<float>(n);
                ctx.Memory.Copy((byte*)d, (byte*)e, n * sizeof(float));
                ctx.Exact<float>(ctx.Down(e, n), x, "device-to-device copy");
                ctx.Memory.Clear((byte*)e, n * sizeof(float));
                ctx.Exact<float>(ctx.Down(e, n), new float[n], "clear");
            }));
    }
}
