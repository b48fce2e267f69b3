using System.Text.Json.Nodes;
using NativeReasoner.Model;
using NativeReasoner.RL;
using Xunit;
using Xunit.Abstractions;

namespace NativeReasoner.Tests.Reliability;

/// <summary>
/// Resource faults during a checkpoint: a full disk or a read-only run directory gives an <see cref="IOException"/>
/// that says what happened and that the previous checkpoint is intact, the previous checkpoint still loads, and no
/// partial file is left. On a real tmpfs where the test may mount one (root in CI); elsewhere the write is made to
/// fail from inside the checkpoint (the same error path, the disk itself not filled).
/// </summary>
public class ResourceFaultTests(ITestOutputHelper output)
{
    private static ICausalLM TinyModel() =>
        ModelPresets.Get("qwen2-tiny").Build(new Generator(4));

    private static void AssertOnlyCheckpoint(RunCheckpoints store, string expected)
    {
        Assert.Empty(Directory.GetDirectories(store.Directory, ".tmp-*"));
        Assert.Equal([expected], Directory.GetDirectories(store.Directory));
        var messages = new List<string>();
        var found = new RunCheckpoints(Path.GetDirectoryName(store.Directory)!, messages.Add).LoadNewest();
        Assert.NotNull(found);
        Assert.Equal(expected, found.Path);
        Assert.Empty(messages);
        using var reloaded = CausalLMRegistry.Load(found.Path);
        Assert.Equal(1, found.State["marker"]!.GetValue<int>());
    }

    /// <summary>The error of a failed checkpoint write: which checkpoint, why, that the previous one stands.</summary>
    private static void AssertClearError(IOException e, string previous, params string[] why)
    {
        Assert.Contains("could not write checkpoint ckpt-0-0000002", e.Message);
        Assert.Contains($"the previous checkpoint {previous} is intact", e.Message);
        Assert.True(why.Any(w => e.Message.Contains(w, StringComparison.OrdinalIgnoreCase)), e.Message);
    }

    [Fact]
    public void FullDiskDuringACheckpoint_ClearError_PreviousIntact_NoPartialFiles()
    {
        using var model = TinyModel();
        using var tmpfs = SmallTmpfs.TryMount(4L << 20);
        var root = tmpfs?.Path ?? CrashSafePipelineTests.TempDir();
        try
        {
            var store = new RunCheckpoints(Path.Combine(root, "run"), _ => { });
            var first = store.Save(0, 1, new JsonObject { ["marker"] = 1 }, model.Save);
            IOException e;
            if (tmpfs != null)
            {
                // A little room left, so the disk fills in the middle of the weights.
                tmpfs.Fill(leaveFree: 16 << 10);
                e = Assert.Throws<IOException>(() => store.Save(0, 2, new JsonObject { ["marker"] = 2 }, model.Save));
                output.WriteLine("on a full tmpfs: " + e.Message);
            }
            else
            {
                e = Assert.Throws<IOException>(() => store.Save(0, 2, new JsonObject { ["marker"] = 2 }, dir =>
                {
                    File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), new byte[1000]);
                    throw new IOException("No space left on device");
                }));
                output.WriteLine("no tmpfs allowed here; injected: " + e.Message);
            }
            AssertClearError(e, first, "No space left on device", "disk is full");
            AssertOnlyCheckpoint(store, first);
        }
        finally { if (tmpfs == null) Directory.Delete(root, true); }
    }

    [Fact]
    public void ReadOnlyRunDirectoryDuringACheckpoint_ClearError_PreviousIntact_NoPartialFiles()
    {
        using var model = TinyModel();
        using var tmpfs = SmallTmpfs.TryMount(4L << 20);
        var root = tmpfs?.Path ?? CrashSafePipelineTests.TempDir();
        try
        {
            var store = new RunCheckpoints(Path.Combine(root, "run"), _ => { });
            var first = store.Save(0, 1, new JsonObject { ["marker"] = 1 }, model.Save);
            IOException e;
            if (tmpfs != null && tmpfs.RemountReadOnly())
            {
                e = Assert.Throws<IOException>(() => store.Save(0, 2, new JsonObject { ["marker"] = 2 }, model.Save));
                output.WriteLine("on a read-only tmpfs: " + e.Message);
            }
            else
            {
                e = Assert.Throws<IOException>(() => store.Save(0, 2, new JsonObject { ["marker"] = 2 }, dir =>
                {
                    File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), new byte[1000]);
                    throw new UnauthorizedAccessException($"Access to the path '{dir}' is denied (read-only)");
                }));
                output.WriteLine("no tmpfs allowed here; injected: " + e.Message);
            }
            AssertClearError(e, first, "Read-only file system", "read-only");
            AssertOnlyCheckpoint(store, first);
        }
        finally { if (tmpfs == null) Directory.Delete(root, true); }
    }

    [Fact]
    public void FullDiskDuringAnAtomicWrite_KeepsTheOldFile_NoTempLeft()
    {
        using var tmpfs = SmallTmpfs.TryMount(1L << 20);
        var root = tmpfs?.Path ?? CrashSafePipelineTests.TempDir();
        try
        {
            var path = Path.Combine(root, "summary.json");
            AtomicFile.WriteAllText(path, "{\"old\": true}");
            if (tmpfs != null)
            {
                tmpfs.Fill(leaveFree: 8 << 10);
                var e = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(path, new string('x', 64 << 10)));
                Assert.Contains("could not write " + path, e.Message);
                Assert.Contains("the previous file is intact", e.Message);
            }
            else
            {
                // Without a mount: a directory that does not exist stands in for one that refuses the write.
                var missing = Path.Combine(root, "gone", "summary.json");
                var e = Assert.Throws<IOException>(() => AtomicFile.WriteAllText(missing, "{}"));
                Assert.Contains("could not write " + missing, e.Message);
                Assert.Contains("nothing was written", e.Message);
            }
            Assert.Equal("{\"old\": true}", File.ReadAllText(path));
            Assert.Empty(Directory.GetFiles(root, "*.tmp-*"));
        }
        finally { if (tmpfs == null) Directory.Delete(root, true); }
    }
}
