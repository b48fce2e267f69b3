using System.Diagnostics;
using System.Runtime.InteropServices;
using NativeReasoner.Distributed;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Tests.Cuda;
using Xunit;

namespace NativeReasoner.Tests.Distributed;

/// <summary>
/// NcclProcessGroup without a GPU: against a stand-in libnccl (tests/Distributed/nccl_stub.c, nccl.h's signatures,
/// recording its arguments) on the CUDA emulator's stream, every call must pass what nccl.h expects — the 128-byte
/// unique id by value, device pointers, element or byte counts, NCCL's type and reduction codes, the backend's
/// stream, grouped sends and receives for all-to-all, split colors. With a GPU and NCCL, one rank's all-reduce is
/// checked on the device.
/// </summary>
public sealed class NcclMarshallingTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "nr-nccl-stub-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("NR_NCCL_LIBRARY", null);
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    /// <summary>Builds the stand-in with cc; null when there is no C compiler (the test then returns early, saying
    /// so).</summary>
    private string? BuildStub()
    {
        Directory.CreateDirectory(_dir);
        var library = Path.Combine(_dir, "libnccl-stub.so");
        var source = Path.Combine(AppContext.BaseDirectory, "Distributed", "nccl_stub.c");
        try
        {
            using var cc = Process.Start(new ProcessStartInfo("cc", ["-shared", "-fPIC", "-O0", "-o", library, source])
            {
                RedirectStandardError = true, UseShellExecute = false,
            })!;
            string errors = cc.StandardError.ReadToEnd();
            cc.WaitForExit();
            Assert.True(cc.ExitCode == 0, errors);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
        return library;
    }

    private static unsafe T Read<T>(IntPtr library, string name) where T : unmanaged
        => *(T*)NativeLibrary.GetExport(library, name);

    [CudaFact(CudaRuntimeKind.Emulator)]
    public unsafe void Arguments_reach_nccl_as_nccl_h_declares_them()
    {
        var path = BuildStub();
        if (path == null)
        {
            Console.WriteLine("no C compiler (cc): the NCCL stand-in cannot be built, marshalling unchecked");
            return;
        }
        Environment.SetEnvironmentVariable("NR_NCCL_LIBRARY", path);
        var stub = NativeLibrary.Load(path);
        var backend = CudaBackend.Emulator;
        var device = CudaDevice.GetEmulator();
        using var world = new LocalProcessGroup();
        using var g = NcclProcessGroup.Create(world, backend);

        // the unique id crossed by value, whole, and the rank and size came back through ncclCommUserRank/Count
        var id = Enumerable.Range(0, 128).Select(i => (byte)(i * 7 + 3)).ToArray();
        var received = new byte[128];
        Marshal.Copy(NativeLibrary.GetExport(stub, "stub_id"), received, 0, 128);
        Assert.Equal(id, received);
        Assert.Equal((0, 1), (g.Rank, g.Size));
        Assert.Equal(22005, g.Version);

        using var x = Tensor.Zeros([6], DType.Float32, device);
        g.AllReduceAsync(x, ReduceOperation.Max).Wait();
        Assert.Equal((IntPtr)x.RawPointer, Read<IntPtr>(stub, "stub_sendbuff"));
        Assert.Equal((IntPtr)x.RawPointer, Read<IntPtr>(stub, "stub_recvbuff"));
        Assert.Equal(6L, Read<long>(stub, "stub_count"));
        Assert.Equal((7, 2), (Read<int>(stub, "stub_dtype"), Read<int>(stub, "stub_op"))); // ncclFloat32, ncclMax
        Assert.Equal((IntPtr)0x1234, Read<IntPtr>(stub, "stub_comm"));
        Assert.Equal(backend.Stream, Read<IntPtr>(stub, "stub_stream"));

        using var h = Tensor.Zeros([3], DType.BFloat16, device);
        g.AllReduceAsync(h).Wait();
        Assert.Equal((9, 0, 3L), (Read<int>(stub, "stub_dtype"), Read<int>(stub, "stub_op"), Read<long>(stub,
            "stub_count")));
        using var l = Tensor.Zeros([2], DType.Int64, device);
        g.AllReduceAsync(l, ReduceOperation.Min).Wait();
        Assert.Equal((4, 3), (Read<int>(stub, "stub_dtype"), Read<int>(stub, "stub_op")));

        // data movement counts bytes as ncclInt8
        using var b = Tensor.Zeros([5], DType.Int64, device);
        g.BroadcastAsync(b, 0).Wait();
        Assert.Equal((0, 40L, 0), (Read<int>(stub, "stub_dtype"), Read<long>(stub, "stub_count"), Read<int>(stub,
            "stub_root")));
        using var gathered = Tensor.Zeros([2, 3], DType.Float32, device);
        using var part = Tensor.Zeros([2, 3], DType.Float32, device);
        g.AllGatherAsync(part, gathered).Wait();
        Assert.Equal(((IntPtr)part.RawPointer, (IntPtr)gathered.RawPointer, 24L),
            (Read<IntPtr>(stub, "stub_sendbuff"), Read<IntPtr>(stub, "stub_recvbuff"), Read<long>(stub, "stub_count")));

        // all-to-all: one group of a send and a receive of 3 rows × 2 floats; an empty exchange posts nothing
        using var rows = Tensor.Zeros([3, 2], DType.Float32, device);
        using var into = Tensor.Zeros([3, 2], DType.Float32, device);
        g.AllToAllVAsync(rows, [3], into, [3]).Wait();
        Assert.Equal((1, 1, 1, 1), (Read<int>(stub, "stub_group_starts"), Read<int>(stub, "stub_group_ends"),
            Read<int>(stub, "stub_sends"), Read<int>(stub, "stub_recvs")));
        Assert.Equal((24L, 24L, 0), (Read<long>(stub, "stub_send_bytes"), Read<long>(stub, "stub_recv_bytes"),
            Read<int>(stub, "stub_peer")));
        Assert.Equal((IntPtr)into.RawPointer, Read<IntPtr>(stub, "stub_recvbuff"));
        using var empty = Tensor.Zeros([0, 2], DType.Float32, device);
        g.AllToAllVAsync(empty, [0], empty, [0]).Wait();
        Assert.Equal((2, 1), (Read<int>(stub, "stub_group_starts"), Read<int>(stub, "stub_sends")));

        // split: the color and key go through; a negative color is NCCL_SPLIT_NOCOLOR and gives no group
        using (var sub = g.Split(5, 2))
        {
            Assert.NotNull(sub);
            Assert.Equal((5, 2), (Read<int>(stub, "stub_color"), Read<int>(stub, "stub_key")));
        }
        Assert.Null(g.Split(-3, 0));
        Assert.Equal(-1, Read<int>(stub, "stub_color"));

        // host tensors belong to the MPI group
        using var host = Tensor.Zeros([2], DType.Float32, Device.Cpu);
        var e = Assert.Throws<ProcessGroupException>(() => g.AllReduceAsync(host));
        Assert.Contains("NCCL moves tensors on the CUDA device", e.Message);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void A_missing_nccl_is_named()
    {
        Environment.SetEnvironmentVariable("NR_NCCL_LIBRARY", "/nonexistent/libnccl.so.2");
        using var world = new LocalProcessGroup();
        var e = Assert.Throws<NcclUnavailableException>(() => NcclProcessGroup.Create(world, CudaBackend.Emulator));
        Assert.Contains("/nonexistent/libnccl.so.2 could not be loaded", e.Message);
    }

    /// <summary>On a GPU with NCCL: one rank's all-reduce leaves the tensor as the local group does (one GPU cannot
    /// host two ranks).</summary>
    [CudaFact(CudaRuntimeKind.Gpu)]
    public void One_rank_on_a_gpu_matches_the_local_group()
    {
        Environment.SetEnvironmentVariable("NR_NCCL_LIBRARY", null);
        using var world = new LocalProcessGroup();
        NcclProcessGroup g;
        try
        {
            g = NcclProcessGroup.Create(world, CudaBackend.Gpu);
        }
        catch (NcclUnavailableException e)
        {
            Console.WriteLine($"NCCL unavailable on this GPU machine: {e.Message}");
            return;
        }
        using (g)
        {
            var values = Enumerable.Range(0, 1000).Select(i => (float)(i % 17)).ToArray();
            using var x = Tensor.FromArray(values, [1000], CudaDevice.Get());
            g.AllReduceAsync(x).Wait();
            using var y = Tensor.FromArray(values, [1000], Device.Cpu);
            world.AllReduce(y);
            Assert.Equal(y.ToArray(), x.ToArray());
            var (moved, counts) = g.AllToAllV(x.View(500, 2), [500]);
            using (moved) Assert.Equal(values, moved.ToArray());
            Assert.Equal([500], counts);
        }
    }
}
