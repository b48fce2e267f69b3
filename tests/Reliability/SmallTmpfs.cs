using System.Diagnostics;

namespace NativeReasoner.Tests.Reliability;

/// <summary>
/// A tmpfs of a few hundred KiB mounted by the test itself (root in CI, or CAP_SYS_ADMIN), so a disk really fills up
/// and a directory really turns read-only; null from <see cref="TryMount"/> where mounting is not allowed.
/// </summary>
internal sealed class SmallTmpfs : IDisposable
{
    public string Path { get; }

    private SmallTmpfs(string path) => Path = path;

    public static SmallTmpfs? TryMount(long bytes)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "nr-tmpfs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        if (Run("mount", "-t", "tmpfs", "-o", $"size={Math.Max(1, bytes / 1024)}k", "tmpfs", path))
            return new SmallTmpfs(path);
        Directory.Delete(path);
        return null;
    }

    public bool RemountReadOnly() => Run("mount", "-o", "remount,ro", Path);

    /// <summary>Writes a filler until the disk is full, then frees <paramref name="leaveFree"/> bytes of it.</summary>
    public void Fill(long leaveFree)
    {
        var filler = System.IO.Path.Combine(Path, "filler");
        var block = new byte[64 << 10];
        using (var f = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, 1))
        {
            try
            {
                while (true) f.Write(block);
            }
            catch (IOException) { }
        }
        using (var f = new FileStream(filler, FileMode.Open, FileAccess.Write))
            f.SetLength(Math.Max(0, new FileInfo(filler).Length - leaveFree));
    }

    private static bool Run(string file, params string[] args)
    {
        try
        {
            var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in args) start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    public void Dispose()
    {
        Run("umount", Path);
        try { Directory.Delete(Path, true); }
        catch (IOException) { }
    }
}
