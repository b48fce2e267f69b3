// Source: PyTorch Lightning's periodic checkpoints and resume from the last valid one.
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using NativeReasoner.IO;

namespace NativeReasoner.RL;

/// <summary>
/// The crash-safe checkpoints of a run: <c>RUN/checkpoints/ckpt-P-SSSSSSS/</c> (phase index P, steps done S), each
/// written into a <c>.tmp-*</c> directory, every file fsynced, then renamed into place in one step, so a process
/// killed mid-write leaves only a temp directory that the next start ignores (with a message) and removes. The last
/// file written is <c>manifest.json</c>, holding each other file's size and SHA-256: a checkpoint is valid only
/// when all of them match, so a torn or edited one is skipped in favour of the one before. The newest
/// <see cref="Keep"/> are kept. A write that fails (a full disk, a read-only directory) removes its temp directory and
/// throws an <see cref="IOException"/> that says so and names the previous checkpoint, which stays intact.
/// </summary>
public sealed class RunCheckpoints(string runDirectory, Action<string> progress)
{
    public const string FolderName = "checkpoints";
    public const string ManifestName = "manifest.json";
    public const string StateName = "state.json";
    /// <summary>
    /// How many checkpoints survive a new one: two, so a checkpoint that proves bad still has a predecessor.
    /// </summary>
    public const int Keep = 2;
    private const string TempPrefix = ".tmp-";

    public string Directory { get; } = Path.Combine(runDirectory, FolderName);

    /// <summary>A valid checkpoint: its directory and its <c>state.json</c>.</summary>
    public sealed record Found(string Path, int Phase, int Step, JsonObject State);

    /// <summary>
    /// Writes a checkpoint of phase <paramref name="phase"/> after <paramref name="step"/> steps:
    /// <paramref name="write"/> fills the directory (weights, optimizer), <paramref name="state"/> becomes <c>state.json</c>. Returns its path.
    /// </summary>
    public string Save(int phase, int step, JsonObject state, Action<string> write)
    {
        var name = Name(phase, step);
        string? temp = null;
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            temp = Path.Combine(Directory, TempPrefix + name + "-" + Guid.NewGuid().ToString("N")[..8]);
            System.IO.Directory.CreateDirectory(temp);
            return Commit(temp, name, phase, step, state, write);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A full disk or a read-only directory: the half-written checkpoint goes, the previous one stays.
            bool removed = temp == null || !System.IO.Directory.Exists(temp) || TryDelete(temp);
            var previous = System.IO.Directory.Exists(Directory) ? Completed().FirstOrDefault() : null;
            throw new IOException(
                $"could not write checkpoint {name} in {Directory}: {e.Message} (is the disk full or the run " +
                "directory read-only?); " +
                (previous == null ? "there is no earlier checkpoint"
                                  : $"the previous checkpoint {previous} is intact") +
                (removed ? "" : $"; the partial {temp} could not be removed and is ignored by the next start"), e);
        }
    }

    private string Commit(string temp, string name, int phase, int step, JsonObject state, Action<string> write)
    {
        write(temp);
        state["phase_index"] = phase;
        state["steps_done"] = step;
        File.WriteAllText(Path.Combine(temp, StateName), state.ToJsonString());
        var manifest = new JsonObject();
        foreach (var file in System.IO.Directory.GetFiles(temp).Order(StringComparer.Ordinal))
        {
            FsyncFile(file);
            manifest[Path.GetFileName(file)] = new JsonObject
            {
                ["bytes"] = new FileInfo(file).Length, ["sha256"] = Sha256(file),
            };
        }
        var manifestPath = Path.Combine(temp, ManifestName);
        File.WriteAllText(manifestPath, new JsonObject { ["files"] = manifest }.ToJsonString());
        FsyncFile(manifestPath);
        FsyncDirectory(temp);
        var final = Path.Combine(Directory, name);
        // A checkpoint of the same step (a rerun that stopped at the same place) is replaced whole.
        if (System.IO.Directory.Exists(final)) System.IO.Directory.Delete(final, true);
        System.IO.Directory.Move(temp, final);
        FsyncDirectory(Directory);
        foreach (var old in Completed().Skip(Keep)) System.IO.Directory.Delete(old, true);
        return final;
    }

    private static bool TryDelete(string directory)
    {
        try
        {
            System.IO.Directory.Delete(directory, true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// The newest valid checkpoint, or null. Unfinished writes are reported and removed; invalid checkpoints are
    /// reported and skipped (left in place for inspection until newer ones push them out).
    /// </summary>
    public Found? LoadNewest()
    {
        if (!System.IO.Directory.Exists(Directory)) return null;
        foreach (var temp in System.IO.Directory.GetDirectories(Directory, TempPrefix + "*"))
        {
            progress($"ignoring {temp}: a checkpoint write that did not finish (the process stopped during it); " +
                     "removed\n");
            System.IO.Directory.Delete(temp, true);
        }
        foreach (var dir in Completed())
        {
            var problem = Validate(dir, out var found);
            if (problem == null) return found;
            progress($"ignoring checkpoint {dir}: {problem}\n");
        }
        return null;
    }

    /// <summary>Removes every checkpoint (a finished run keeps only its outputs).</summary>
    public void Clear()
    {
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, true);
    }

    /// <summary>Completed checkpoint directories, newest first (phase, then step).</summary>
    private IEnumerable<string> Completed() =>
        System.IO.Directory.GetDirectories(Directory, "ckpt-*")
            .Where(d => TryParseName(Path.GetFileName(d), out _, out _))
            .OrderByDescending(d => Path.GetFileName(d), StringComparer.Ordinal).ToArray();

    /// <summary>
    /// A JSON file under <see cref="StrictJson"/>'s rules (a key given twice or a lone surrogate makes the checkpoint
    /// unreadable: an InvalidDataException) rather than failing in whoever reads the state later.
    /// </summary>
    private static JsonNode? ReadStrict(string path)
    {
        var text = File.ReadAllText(path);
        using (StrictJson.Parse(text, Path.GetFileName(path))) { }
        return JsonNode.Parse(text, documentOptions: StrictJson.DocumentOptions);
    }

    private static string Name(int phase, int step) => $"ckpt-{phase}-{step:D7}";

    private static bool TryParseName(string name, out int phase, out int step)
    {
        phase = step = -1;
        var parts = name.Split('-');
        return parts.Length == 3 && parts[0] == "ckpt" && int.TryParse(parts[1], out phase) &&
               parts[2].Length == 7 && int.TryParse(parts[2], out step);
    }

    /// <summary>Null when the checkpoint is whole and matches its manifest; otherwise what is wrong with it.</summary>
    private static string? Validate(string dir, out Found? found)
    {
        found = null;
        TryParseName(Path.GetFileName(dir), out int phase, out int step);
        var manifestPath = Path.Combine(dir, ManifestName);
        if (!File.Exists(manifestPath)) return $"no {ManifestName} (incomplete)";
        JsonObject files;
        JsonObject state;
        try
        {
            files = ReadStrict(manifestPath)!["files"]!.AsObject();
            foreach (var (file, entry) in files)
            {
                var path = Path.Combine(dir, file);
                if (!File.Exists(path)) return $"{file} listed in {ManifestName} is missing";
                long bytes = entry!["bytes"]!.GetValue<long>();
                if (new FileInfo(path).Length != bytes)
                    return $"{file} has {new FileInfo(path).Length} bytes, {ManifestName} says {bytes}";
                if (Sha256(path) != entry["sha256"]!.GetValue<string>())
                    return $"{file} does not match its SHA-256 in {ManifestName}";
            }
            if (!files.ContainsKey(StateName)) return $"{StateName} is not listed in {ManifestName}";
            state = ReadStrict(Path.Combine(dir, StateName))!.AsObject();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException
                                      or NullReferenceException or FormatException or IOException
                                      or InvalidDataException)
        {
            return $"unreadable {ManifestName} or {StateName} ({e.Message})";
        }
        if (state["phase_index"] is not JsonValue p || !p.TryGetValue(out int statePhase) || statePhase != phase
            || state["steps_done"] is not JsonValue s || !s.TryGetValue(out int stateStep) || stateStep != step)
            return $"{StateName} does not name phase {phase} step {step} as the directory does";
        found = new Found(dir, phase, step, state);
        return null;
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static void FsyncFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Makes a rename or new entries durable (POSIX needs the directory itself fsynced; Windows has no such call).
    /// </summary>
    private static void FsyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        int fd = Open(path, 0);
        if (fd < 0) return;
        Fsync(fd);
        Close(fd);
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
