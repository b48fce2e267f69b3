using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Cuda;
using NativeReasoner.Kernels.Cuda.Native;
using NativeReasoner.Kernels.Reference;
using NativeReasoner.Kernels.Verification;
using Xunit;

namespace NativeReasoner.Tests.Cuda;

/// <summary>
/// The device model the kernels rely on (kernels/cuda/selftest.cu): block reductions through shuffles and
/// barriers, and the tensor-core fragment layout. The same tests on the GPU check the prelude against the
/// hardware; the rule-breaking kernels run on the emulator only (undefined on a GPU).
/// </summary>
public sealed unsafe class CudaDeviceModelTests
{
    public static IEnumerable<object[]> BlockSizes => new[] { 32, 96, 256, 1024 }.Select(b => new object[] { b });

    [CudaTheory(CudaRuntimeKind.Emulator)]
    [MemberData(nameof(BlockSizes))]
    public void BlockReduceOnEmulator(int block) => BlockReduce(CudaBackend.Emulator, block);

    [CudaTheory(CudaRuntimeKind.Gpu)]
    [MemberData(nameof(BlockSizes))]
    public void BlockReduceOnGpu(int block) => BlockReduce(CudaBackend.Gpu, block);

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void MmaLayoutOnEmulator() => Mma(CudaBackend.Emulator);

    [CudaFact(CudaRuntimeKind.Gpu)]
    public void MmaLayoutOnGpu() => Mma(CudaBackend.Gpu);

    private static void BlockReduce(CudaBackend b, int block)
    {
        using var ctx = new KernelCheckContext(b.Kernels, b.Memory, block);
        int n = 3001;
        var x = ctx.Rand(n);
        float* dx = ctx.Up(x);
        float* dout = ctx.Garbage<float>(2);
        void** a = stackalloc void*[3];
        a[0] = &dx;
        a[1] = &dout;
        a[2] = &n;
        b.Kernels.Launch("selftest.cu", "nr_selftest_block_reduce", 1, (uint)block, 0, a);
        var r = ctx.Down(dout, 2);
        double sum = x.Sum(v => (double)v);
        Assert.True(Math.Abs(r[0] - sum) < 1e-3, $"block sum {r[0]}, expected {sum}");
        Assert.Equal(x.Max(), r[1]);
    }

    private static void Mma(CudaBackend b)
    {
        using var ctx = new KernelCheckContext(b.Kernels, b.Memory, 16816);
        var af = ctx.Rand(16 * 16);
        var bf = ctx.Rand(16 * 8);
        var ab = new ushort[af.Length];
        var bb = new ushort[bf.Length];
        fixed (float* p = af) fixed (ushort* q = ab) ReferenceKernels.Instance.FloatToBFloat16(p, q, af.Length);
        fixed (float* p = bf) fixed (ushort* q = bb) ReferenceKernels.Instance.FloatToBFloat16(p, q, bf.Length);
        // Reference on the bf16-rounded values.
        var expected = new float[16 * 8];
        fixed (ushort* pa = ab) fixed (ushort* pb = bb) fixed (float* pc = expected)
            ReferenceKernels.Instance.GemmBf16(1, false, false, 16, 8, 16, 1f, pa, 16, 0, pb, 8, 0, 0f, pc, 8, 0);
        ushort* dA = ctx.Up(ab);
        ushort* dB = ctx.Up(bb);
        float* dD = ctx.Garbage<float>(16 * 8);
        void** a = stackalloc void*[3];
        a[0] = &dA;
        a[1] = &dB;
        a[2] = &dD;
        b.Kernels.Launch("selftest.cu", "nr_selftest_mma_bf16", 1, 32, 0, a);
        ctx.Close(ctx.Down(dD, 16 * 8), expected, 1e-5, "mma m16n8k16 bf16");
        Assert.True(ctx.Failures.Count == 0, string.Join("\n", ctx.Failures));
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void EmulatorReportsDeadlocks()
    {
        var e = RuleBreaker("nr_selftest_deadlock");
        Assert.Contains("deadlock", e.Message);
        Assert.Contains("nr_selftest_deadlock", e.Message);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void EmulatorReportsShufflesWithExitedLanes()
    {
        var e = RuleBreaker("nr_selftest_exited_lane_shuffle");
        Assert.Contains("exited", e.Message);
    }

    [CudaFact(CudaRuntimeKind.Emulator)]
    public void ReverseScheduleExposesAMissingBarrierThatForwardHides()
    {
        var b = CudaBackend.Emulator;
        float[] Run(EmulatorSchedule schedule)
        {
            using var ctx = new KernelCheckContext(b.Kernels, b.Memory, 2);
            long outPtr = (long)ctx.Garbage<float>(64);
            b.SetEmulatorSchedule(schedule);
            try
            {
                long arg = outPtr;
                void** a = stackalloc void*[1];
                a[0] = &arg;
                b.Kernels.Launch("selftest.cu", "nr_selftest_missing_barrier", 1, 64, 64 * sizeof(float), a);
            }
            finally
            {
                b.SetEmulatorSchedule(EmulatorSchedule.Forward);
            }
            return ctx.Down((float*)outPtr, 64);
        }
        var forward = Run(EmulatorSchedule.Forward);
        Assert.Equal(Enumerable.Range(0, 64).Select(t => t > 0 ? t - 1f : 0f), forward); // hidden
        var reverse = Run(EmulatorSchedule.Reverse);
        Assert.Contains(reverse, float.IsNaN); // exposed
    }

    private static CudaException RuleBreaker(string kernel)
    {
        var b = CudaBackend.Emulator;
        using var ctx = new KernelCheckContext(b.Kernels, b.Memory, 1);
        long x = (long)ctx.Up(new float[32]);
        return Assert.Throws<CudaException>(() =>
        {
            long arg = x;
            void** a = stackalloc void*[1];
            a[0] = &arg;
            b.Kernels.Launch("selftest.cu", kernel, 1, 32, 0, a);
        });
    }
}
