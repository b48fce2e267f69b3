// Source: write-temp, fsync, rename (POSIX rename(2) atomicity).
namespace NativeReasoner.RL;

/// <summary>
/// Whole-file replacement that a crash cannot tear: the text goes to a temp file beside the target, is fsynced,
/// then renamed over it, so a reader sees the old file or the new one, never a mix.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="text"/>; when the write fails (a full disk, a read-only
    /// directory) the temp file is removed, the old file is untouched, and the <see cref="IOException"/> names both.
    /// </summary>
    public static void WriteAllText(string path, string text)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false)))
            {
                writer.Write(text);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The directory may refuse even that (read-only); the next write uses another temp name.
            try { File.Delete(temp); }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { }
            var previous = File.Exists(path) ? "the previous file is intact" : "nothing was written";
            throw new IOException($"could not write {path}: {e.Message} (is the disk full or the directory " +
                                  $"read-only?); {previous}", e);
        }
    }
}
