using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using Xunit;

namespace NativeReasoner.Tests.Cuda;

/// <summary>The bindings, context, modules and allocator of the CUDA backend (emulator everywhere, GPU where present).</summary>
public sealed unsafe class CudaBackendTests
{
    [Fact]
    public void MissingDriverGivesAClearAnswerNotACrash()
    {
        bool ok = CudaBackend.TryGet(CudaRuntimeKind.Gpu, out var b, out var reason);
        if (ok) Assert.NotNull(b);
        else Assert.Contains("CUDA", reason, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void AskingForTheGpuDeviceWithoutOneThrowsNotSupported()
    {
        if (CudaDevice.IsAvailable(out _)) return; // a GPU is here: nothing to refuse
        var e = Assert.ThrowsAny<NotSupportedException>(() => Device.Parse("cuda"));
        Assert.Contains("CUDA", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void EmulatorReportsADevice()
    {
        var b = CudaBackend.Emulator;
        Assert.Equal(9, b.ComputeMajor);
        Assert.Equal("sm_90", b.Arch);
        Assert.Contains("emulator", b.Description);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void CachingAllocatorReusesFreedBlocks()
    {
        var m = CudaBackend.Emulator.Memory;
        var a = m.Allocate(1000);
        long before = m.DeviceAllocations;
        byte* p = a.Pointer;
        a.Release();
        var b = m.Allocate(900); // same 1024-byte class
        Assert.Equal(before, m.DeviceAllocations);
        Assert.True(b.Pointer == p);
        b.Release();
        Assert.Equal(1024, CudaMemory.SizeClass(1000));
        Assert.Equal(2L << 20, CudaMemory.SizeClass((1L << 20) + 1));
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void LargeCopiesGoThroughStagingInChunks()
    {
        var m = CudaBackend.Emulator.Memory;
        int n = (5 << 20) / 4 + 3; // more than the 4 MiB staging buffer
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = i * 0.5f;
        var buf = m.Allocate((long)n * 4);
        try
        {
            fixed (float* p = x) m.CopyFromHost(p, buf.Pointer, (long)n * 4);
            var y = new float[n];
            fixed (float* p = y) m.CopyToHost(buf.Pointer, p, (long)n * 4);
            Assert.Equal(x, y);
        }
        finally
        {
            buf.Release();
        }
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void AsyncUploadsThroughTheRingArriveIntact() => AsyncUploads(CudaBackend.Emulator);

    [CudaFact(CudaRuntimeKind.Gpu)]
    public void AsyncUploadsThroughTheRingArriveIntactOnGpu() => AsyncUploads(CudaBackend.Gpu);

    private static void AsyncUploads(CudaBackend b)
    {
        // More uploads than ring slots, each to its own buffer, read back only at the end: a slot refilled before
        // its DMA finished would corrupt an earlier buffer.
        var m = b.Memory;
        var bufs = new List<global::NativeReasoner.Kernels.Memory.NativeBuffer>();
        try
        {
            for (int i = 0; i < 40; i++)
            {
                var host = Enumerable.Range(0, 1000 + i).Select(v => (float)(v * 31 + i)).ToArray();
                var buf = m.Allocate(host.Length * 4L);
                bufs.Add(buf);
                fixed (float* p = host) m.CopyFromHostAsync(p, buf.Pointer, host.Length * 4L);
                Array.Clear(host); // the ring holds its own copy
            }
            for (int i = 0; i < bufs.Count; i++)
            {
                var back = new float[1000 + i];
                fixed (float* p = back) m.CopyToHost(bufs[i].Pointer, p, back.Length * 4L);
                Assert.Equal(Enumerable.Range(0, 1000 + i).Select(v => (float)(v * 31 + i)), back);
            }
        }
        finally
        {
            foreach (var x in bufs) x.Release();
        }
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void LaunchErrorsNameTheKernelAndTheCudaError()
    {
        var k = CudaBackend.Emulator.Kernels;
        var e = Assert.Throws<CudaException>(() =>
        {
            float* y = null;
            long n = 1;
            float v = 0;
            void** a = stackalloc void*[3];
            a[0] = &y;
            a[1] = &n;
            a[2] = &v;
            k.Launch("elementwise.cu", "nr_fill_f32", 1, 1, 1, 2048, 1, 1, 0, a); // 2048 threads: over the limit
        });
        Assert.Contains("nr_fill_f32", e.Message);
        Assert.Contains("CUDA_ERROR_INVALID_VALUE", e.Message);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void UnknownKernelIsNamedInTheError()
    {
        var e = Assert.Throws<CudaException>(() => CudaBackend.Emulator.Modules.Function("elementwise.cu", "nr_no_such_kernel"));
        Assert.Contains("nr_no_such_kernel", e.Message);
        Assert.Contains("CUDA_ERROR_NOT_FOUND", e.Message);
    }

    [Fact]
    public void EveryKernelSourceIsEmbeddedWithThePrelude()
    {
        var s = CudaModules.Sources;
        Assert.Contains("prelude.cuh", s.Keys);
        Assert.Contains("elementwise.cu", s.Keys);
        Assert.All(s.Where(kv => kv.Key.EndsWith(".cu")), kv => Assert.Contains("#include \"prelude.cuh\"", kv.Value));
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void TensorsMoveToTheEmulatedDeviceAndBack()
    {
        var dev = Device.Parse("cuda:emu");
        using var t = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5 }, 5);
        using var d = t.To(dev);
        Assert.Equal(dev, d.Device);
        using var back = d.To(Device.Cpu);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5 }, back.ToArray());
    }
}
