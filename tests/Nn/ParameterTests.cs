using NativeReasoner.Kernels;
using NativeReasoner.Nn;
using Xunit;

namespace NativeReasoner.Tests.Nn;

public sealed class ParameterTests
{
    [Fact]
    public void Copies_Data_And_Is_A_Leaf_That_Requires_Grad()
    {
        using var data = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2);
        using var p = new Parameter(data);
        Assert.True(p.RequiresGrad);
        Assert.True(p.IsLeaf);
        Assert.Equal(DType.Float32, p.DType);
        Assert.Equal([2, 2], p.Shape.ToArray());
        Assert.True(p.IsContiguous);

        // A copy: changing or disposing the source leaves the parameter intact.
        data.Fill_(9f);
        data.Dispose();
        Assert.Equal([1f, 2f, 3f, 4f], p.ToArray());
    }

    [Fact]
    public void Copy_Of_A_Strided_View_Is_Dense()
    {
        using var data = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        using var t = data.T();
        using var p = new Parameter(t);
        Assert.Equal([3, 2], p.Shape.ToArray());
        Assert.Equal([1f, 4f, 2f, 5f, 3f, 6f], p.ToArray());
    }

    [Fact]
    public void RequiresGrad_False_Makes_A_Frozen_Parameter()
    {
        using var data = Tensor.Zeros(3);
        using var p = new Parameter(data, requiresGrad: false);
        Assert.False(p.RequiresGrad);
    }

    [Fact]
    public void Integer_Data_Is_Rejected()
    {
        using var ids = Tensor.FromArray([1L, 2L], 2);
        Assert.Throws<ArgumentException>(() => new Parameter(ids));
    }

    [Fact]
    public void Survives_The_Scope_It_Was_Created_In()
    {
        Parameter p;
        using (new TensorScope())
        {
            using var data = Tensor.Ones(3);
            p = new Parameter(data);
        }
        Assert.False(p.IsDisposed);
        Assert.Equal([1f, 1f, 1f], p.ToArray());
        p.Dispose();
        Assert.True(p.IsDisposed);
    }
}
