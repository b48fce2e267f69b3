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
        const string status = "/proc/self/status";
        if (OperatingSystem.IsLinux() && File.Exists(status))
        {
            foreach (string line in File.ReadLines(status))
            {
                // "VmRSS:	  123456 kB"
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                string[] parts = line[6..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 1 && long.TryParse(parts[0], out long kb)) return kb * 1024;
            }
        }
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.WorkingSet64;
    }

    /// <summary>"1.23 GiB" / "456.7 MiB" for reports.</summary>
    public static string Format(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):F2} GiB"
        : $"{bytes / (double)(1L << 20):F1} MiB";
}
