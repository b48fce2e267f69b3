using System.Runtime.InteropServices;

namespace NativeReasoner.IO;

/// <summary>
/// The process's resident memory: on Linux VmRSS from /proc/self/status (anonymous memory, native buffers and
/// mapped checkpoint pages that have been touched), elsewhere the working set .NET reports.
/// </summary>
public static class ResidentMemory
{
    /// <summary>Resident bytes now.</summary>
    public static long CurrentBytes()
    {
        if (ReadStatus("VmRSS:") is { } bytes) return bytes;
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.WorkingSet64;
    }

    /// <summary>The most resident bytes the process has held so far (VmHWM; elsewhere the peak working set).</summary>
    public static long PeakBytes()
    {
        if (ReadStatus("VmHWM:") is { } bytes) return bytes;
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.PeakWorkingSet64;
    }

    /// <summary>A "Key:   123456 kB" line of /proc/self/status in bytes; null off Linux or if absent.</summary>
    private static long? ReadStatus(string key)
    {
        const string status = "/proc/self/status";
        if (!OperatingSystem.IsLinux() || !File.Exists(status)) return null;
        foreach (string line in File.ReadLines(status))
        {
            if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
            string[] parts = line[key.Length..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && long.TryParse(parts[0], out long kb)) return kb * 1024;
        }
        return null;
    }

    /// <summary>
    /// Gives freed memory back to the system: the managed heap's garbage (random initial values are drawn into managed
    /// arrays), the host buffer pool's cached blocks, then (glibc) the free pages inside the C heap, which <c>free</c>
    /// keeps for reuse. Used after a load has replaced a model's initial float32 weights, so the resident size
    /// reflects the model as held.
    /// </summary>
    public static void ReturnFreedMemory()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Kernels.Memory.BufferPool.Shared.Trim();
        if (!OperatingSystem.IsLinux()) return;
        try { _ = MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no malloc_trim): the pages stay reusable by this process, just not returned.
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>"1.23 GiB" / "456.7 MiB" for reports.</summary>
    public static string Format(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):F2} GiB"
        : $"{bytes / (double)(1L << 20):F1} MiB";
}
