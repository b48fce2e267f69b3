// Source: write-temp, fsync, rename (POSIX rename(2) atomicity).
namespace NativeReasoner.RL;

/// <summary>
/// Whole-file replacement that a crash cannot tear: the text goes to a temp file beside the target, is fsynced,
/// then renamed over it, so a reader sees the old file or the new one, never a mix.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        using (var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false)))
        {
            writer.Write(text);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}
