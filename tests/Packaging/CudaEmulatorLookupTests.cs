using NativeReasoner.Kernels.Cuda.Native;
using Xunit;

namespace NativeReasoner.Tests.Packaging;

/// <summary>
/// Where the CUDA emulator library is found when the engine comes from a NuGet package: the package puts it under
/// runtimes/linux-x64/native, which the host lists in NATIVE_DLL_SEARCH_DIRECTORIES rather than next to the
/// assemblies (scripts/pack-check.sh runs the packaged engine for real).
/// </summary>
public class CudaEmulatorLookupTests
{
    [Fact]
    public void NativeSearchFolders_SplitsTheHostsList()
    {
        char sep = Path.PathSeparator;
        Assert.Equal(["/app/", "/pkgs/nativereasoner/0.1.0/runtimes/linux-x64/native/"],
            CudaLibraries.NativeSearchFolders($"/app/{sep}/pkgs/nativereasoner/0.1.0/runtimes/linux-x64/native/{sep}"));
        Assert.Empty(CudaLibraries.NativeSearchFolders(null));
        Assert.Empty(CudaLibraries.NativeSearchFolders(""));
    }

    [Fact]
    public void FindEmulator_TakesTheFirstFolderHoldingTheLibrary()
    {
        string root = Path.Combine(Path.GetTempPath(), "nr-emu-lookup-" + Guid.NewGuid().ToString("N"));
        string empty = Path.Combine(root, "app"), native = Path.Combine(root, "runtimes", "linux-x64", "native");
        string later = Path.Combine(root, "later");
        try
        {
            foreach (var d in new[] { empty, native, later }) Directory.CreateDirectory(d);
            File.WriteAllBytes(Path.Combine(native, CudaLibraries.EmulatorFileName), [0]);
            File.WriteAllBytes(Path.Combine(later, CudaLibraries.EmulatorFileName), [0]);

            Assert.Equal(Path.Combine(native, CudaLibraries.EmulatorFileName),
                CudaLibraries.FindEmulator([null, "", empty, native, later]));
            Assert.Null(CudaLibraries.FindEmulator([empty, Path.Combine(root, "missing")]));
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void EmulatorPath_InTheTestRun_IsTheBuiltLibraryOrNothing()
    {
        // The test run has no package: $NR_CUDA_EMULATOR when set, else the library the build copied next to
        // the assemblies, if g++ built one.
        string? path = CudaLibraries.EmulatorPath();
        string? env = Environment.GetEnvironmentVariable(CudaLibraries.EmulatorPathVariable);
        string expected = string.IsNullOrWhiteSpace(env)
            ? Path.Combine(AppContext.BaseDirectory, CudaLibraries.EmulatorFileName)
            : env;
        Assert.Equal(File.Exists(expected) ? expected : null, path);
    }
}
