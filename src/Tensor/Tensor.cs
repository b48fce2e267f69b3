using System.Runtime.CompilerServices;
using NativeReasoner.Autograd;
using NativeReasoner.Kernels;
using NativeReasoner.Kernels.Memory;

namespace NativeReasoner;

/// <summary>
/// An n-dimensional array on a device: a window (shape, strides, offset in elements) onto a reference-counted
/// native buffer. Views (reshape, permute, narrow, expand, ...) share the buffer; <see cref="Dispose"/> drops
/// this tensor's reference, and the last reference returns the memory to the pool. No finalizer: memory is
/// freed by Dispose or by the <see cref="TensorScope"/> the tensor was created in.
/// Compute is float32; bfloat16 and float16 are storage formats (convert with <see cref="To(DType)"/>);
/// int32 and int64 hold ids and indices.
/// </summary>
public unsafe partial class Tensor : IDisposable
{
    private NativeBuffer? _buffer;
    private readonly int[] _shape;
    private readonly long[] _strides;
    private Tensor? _grad;

    public DType DType { get; private set; }
    public Device Device { get; }

    /// <summary>Offset of element [0, …, 0] from the buffer start, in elements.</summary>
    public long Offset { get; }

    public ReadOnlySpan<int> Shape => _shape;
    public ReadOnlySpan<long> Strides => _strides;
    public int Rank => _shape.Length;
    public long Numel { get; }

    /// <summary>Optional name (parameters carry their dotted name here for error messages).</summary>
    public string? Name { get; set; }

    /// <summary>The function that produced this tensor in the autograd graph; null for leaves.</summary>
    public GradFn? GradFn { get; internal set; }

    /// <summary>True if gradients flow into (leaf) or through (non-leaf) this tensor.</summary>
    public bool RequiresGrad { get; private set; }

    public bool IsLeaf => GradFn == null;

    /// <summary>The accumulated gradient of a leaf that requires grad (same shape; owned by this tensor).</summary>
    public Tensor? Grad
    {
        get => _grad;
        set
        {
            if (value != null && !value.Shape.SequenceEqual(Shape))
                throw new ArgumentException($"grad of shape {FormatShape(value.Shape)} assigned to a tensor of shape {FormatShape(Shape)}");
            if (!ReferenceEquals(_grad, value)) _grad?.Dispose();
            _grad = value;
        }
    }

    internal TensorScope? OwnerScope { get; set; }

    public bool IsDisposed => _buffer == null;

    internal Tensor(NativeBuffer buffer, Device device, DType dtype, int[] shape, long[] strides, long offset)
    {
        _buffer = buffer;
        Device = device;
        DType = dtype;
        _shape = shape;
        _strides = strides;
        Offset = offset;
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {FormatShape(shape)}");
            n *= d;
        }
        Numel = n;
        TensorScope.RegisterNew(this);
    }

    // ------------------------------------------------------------------ creation

    /// <summary>A new uninitialised contiguous tensor.</summary>
    public static Tensor Empty(ReadOnlySpan<int> shape, DType dtype = DType.Float32, Device? device = null)
    {
        device ??= Device.Default;
        var dims = shape.ToArray();
        long n = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {FormatShape(dims)}");
            n = checked(n * d);
        }
        var buffer = device.Allocate(checked(n * dtype.SizeOf()));
        return new Tensor(buffer, device, dtype, dims, ContiguousStrides(dims), 0);
    }

    public static Tensor Empty(params int[] shape) => Empty(shape.AsSpan());

    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype = DType.Float32, Device? device = null)
    {
        var t = Empty(shape, dtype, device);
        t.Device.Memory.Clear(t.RawPointer, t.Numel * dtype.SizeOf());
        return t;
    }

    public static Tensor Zeros(params int[] shape) => Zeros(shape.AsSpan());

    public static Tensor Full(ReadOnlySpan<int> shape, float value, Device? device = null)
    {
        var t = Empty(shape, DType.Float32, device);
        t.Device.Kernels.Fill(t.Data, t.Numel, value);
        return t;
    }

    public static Tensor Ones(params int[] shape) => Full(shape, 1f);

    /// <summary>A 0-d tensor holding one float.</summary>
    public static Tensor Scalar(float value, Device? device = null) => Full(ReadOnlySpan<int>.Empty, value, device);

    /// <summary>Copies float data into a new tensor of the given shape.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> data, ReadOnlySpan<int> shape, Device? device = null)
    {
        var t = Empty(shape, DType.Float32, device);
        if (data.Length != t.Numel)
            throw new ArgumentException($"FromArray: {data.Length} values do not fill shape {FormatShape(shape)} ({t.Numel} elements)");
        t.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data));
        return t;
    }

    public static Tensor FromArray(float[] data, params int[] shape) => FromArray(data.AsSpan(), shape);

    public static Tensor FromArray(ReadOnlySpan<long> data, ReadOnlySpan<int> shape, Device? device = null)
    {
        var t = Empty(shape, DType.Int64, device);
        if (data.Length != t.Numel)
            throw new ArgumentException($"FromArray: {data.Length} values do not fill shape {FormatShape(shape)} ({t.Numel} elements)");
        t.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data));
        return t;
    }

    public static Tensor FromArray(long[] data, params int[] shape) => FromArray(data.AsSpan(), shape);

    public static Tensor FromArray(ReadOnlySpan<int> data, ReadOnlySpan<int> shape, Device? device = null)
    {
        var t = Empty(shape, DType.Int32, device);
        if (data.Length != t.Numel)
            throw new ArgumentException($"FromArray: {data.Length} values do not fill shape {FormatShape(shape)} ({t.Numel} elements)");
        t.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data));
        return t;
    }

    /// <summary>[0, 1, …, n−1] as float32.</summary>
    public static Tensor Arange(int n, Device? device = null)
    {
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = i;
        return FromArray(values, [n], device);
    }

    /// <summary>Normal(0, std²) samples from a seeded generator.</summary>
    public static Tensor Randn(ReadOnlySpan<int> shape, Generator generator, float std = 1f, Device? device = null)
    {
        if (RandomInitSkipped) return Empty(shape, DType.Float32, device);
        var values = new float[ElementCount(shape)];
        generator.FillNormal(values, 0f, std);
        return FromArray(values, shape, device);
    }

    /// <summary>Uniform[low, high) samples from a seeded generator.</summary>
    public static Tensor Rand(ReadOnlySpan<int> shape, Generator generator, float low = 0f, float high = 1f, Device? device = null)
    {
        if (RandomInitSkipped) return Empty(shape, DType.Float32, device);
        var values = new float[ElementCount(shape)];
        generator.FillUniform(values, low, high);
        return FromArray(values, shape, device);
    }

    // ------------------------------------------------------------------ data access

    /// <summary>
    /// Address of element [0,…,0] in the device's memory: readable by host code only when
    /// <see cref="Device.IsHost"/>; otherwise hand it to the device's kernels or use CopyToHost.
    /// </summary>
    public byte* RawPointer
    {
        get
        {
            var b = _buffer ?? throw new ObjectDisposedException(nameof(Tensor), $"tensor{NameSuffix} of shape {FormatShape(Shape)} was disposed");
            return b.Pointer + Offset * DType.SizeOf();
        }
    }

    /// <summary>Float pointer to element [0,…,0]; the tensor must be float32.</summary>
    public float* Data
    {
        get
        {
            if (DType != DType.Float32)
                throw new InvalidOperationException($"tensor{NameSuffix} is {DType}, float32 data was asked for; convert with To(DType.Float32)");
            return (float*)RawPointer;
        }
    }

    internal NativeBuffer Buffer => _buffer ?? throw new ObjectDisposedException(nameof(Tensor), $"tensor{NameSuffix} was disposed");

    /// <summary>True if the elements are laid out densely in row-major order.</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int i = Rank - 1; i >= 0; i--)
            {
                if (_shape[i] != 1 && _strides[i] != expected) return false;
                expected *= _shape[i];
            }
            return true;
        }
    }

    /// <summary>Copies the elements, in row-major order, into a new float array (any float dtype).</summary>
    public float[] ToArray()
    {
        using var c = DType == DType.Float32 ? ContiguousNoGrad() : ToDTypeNoGrad(DType.Float32);
        var result = new float[c.Numel];
        c.CopyToHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>Copies an integer tensor's elements into a new long array.</summary>
    public long[] ToInt64Array()
    {
        using var c = DType == DType.Int64 ? ContiguousNoGrad() : ToDTypeNoGrad(DType.Int64);
        var result = new long[c.Numel];
        c.CopyToHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>Copies the raw bytes of this contiguous tensor into host memory (any device, any dtype).</summary>
    public void CopyToHost(Span<byte> destination)
    {
        long bytes = StorageBytes;
        if (!IsContiguous) throw new InvalidOperationException($"CopyToHost: tensor{NameSuffix} must be contiguous");
        if (destination.Length != bytes)
            throw new ArgumentException($"CopyToHost: destination holds {destination.Length} bytes, tensor{NameSuffix} {FormatShape(Shape)} {DType} has {bytes}");
        if (bytes == 0) return;
        fixed (byte* d = destination) Device.Memory.CopyToHost(RawPointer, d, bytes);
    }

    /// <summary>Overwrites this contiguous tensor with raw bytes from host memory (any device, any dtype).</summary>
    public void CopyFromHost(ReadOnlySpan<byte> source)
    {
        long bytes = StorageBytes;
        if (!IsContiguous) throw new InvalidOperationException($"CopyFromHost: tensor{NameSuffix} must be contiguous");
        if (source.Length != bytes)
            throw new ArgumentException($"CopyFromHost: source holds {source.Length} bytes, tensor{NameSuffix} {FormatShape(Shape)} {DType} needs {bytes}");
        if (bytes == 0) return;
        fixed (byte* s = source) Device.Memory.CopyFromHost(s, RawPointer, bytes);
    }

    private static int ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {FormatShape(shape)}");
            n *= d;
        }
        return checked((int)n);
    }

    /// <summary>The value of a one-element tensor.</summary>
    public float Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item() needs one element, tensor{NameSuffix} has shape {FormatShape(Shape)}");
        return ToArray()[0];
    }

    // ------------------------------------------------------------------ ownership

    private int _graphHolds;
    private bool _disposeRequested;

    /// <summary>
    /// Drops this tensor's reference to its memory. Idempotent. While a recorded graph node still needs
    /// the tensor (as an input or saved value), the release is deferred until that node is released.
    /// </summary>
    public void Dispose()
    {
        if (_buffer == null) return;
        if (_graphHolds > 0)
        {
            _disposeRequested = true;
            return;
        }
        DisposeNow();
    }

    private void DisposeNow()
    {
        var b = _buffer;
        if (b == null) return;
        _buffer = null;
        b.Release();
        _grad?.Dispose();
        _grad = null;
        // Nothing can reach this node any more (consumers hold their inputs), so release it; that
        // cascades to the inputs it held.
        var fn = GradFn;
        GradFn = null;
        fn?.Release();
    }

    internal void AddGraphHold() => _graphHolds++;

    /// <summary>True while a recorded graph node holds this tensor (as an input or saved value).</summary>
    internal bool HasGraphHolds => _graphHolds > 0;

    internal void ReleaseGraphHold()
    {
        if (--_graphHolds == 0 && _disposeRequested) DisposeNow();
    }

    /// <summary>Moves this tensor from its scope to the enclosing one (or to no scope); returns this.</summary>
    public Tensor MoveToOuterScope()
    {
        var scope = OwnerScope;
        if (scope == null) return this;
        OwnerScope = null;
        // A suspended region in between means "no scope": the tensor then belongs to the caller.
        var outer = scope.Outer;
        if (outer != null && !outer.IsSuspended) outer.Adopt(this);
        return this;
    }

    /// <summary>Removes this tensor from every scope: the caller owns it and must dispose it. Returns this.</summary>
    public Tensor DetachFromScopes()
    {
        OwnerScope = null;
        return this;
    }

    // ------------------------------------------------------------------ autograd flags

    /// <summary>Marks a leaf as requiring gradients; returns this.</summary>
    public Tensor RequiresGrad_(bool requiresGrad = true)
    {
        if (!IsLeaf) throw new InvalidOperationException("RequiresGrad_ can only be set on leaf tensors; use Detach() first");
        if (requiresGrad && DType != DType.Float32)
            throw new InvalidOperationException($"only float32 tensors can require gradients, tensor{NameSuffix} is {DType}");
        RequiresGrad = requiresGrad;
        return this;
    }

    internal void SetRequiresGradInternal(bool value) => RequiresGrad = value;

    /// <summary>Clears the accumulated gradient.</summary>
    public void ZeroGrad()
    {
        Grad = null;
    }

    // ------------------------------------------------------------------ helpers

    internal string NameSuffix => Name == null ? "" : $" '{Name}'";

    public static long[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= shape[i];
        }
        return strides;
    }

    public static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    /// <summary>Normalises a possibly negative axis index against a rank.</summary>
    public static int NormalizeDim(int dim, int rank, string op)
    {
        int d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= Math.Max(rank, 1) || (rank == 0 && d != 0))
            throw new ArgumentOutOfRangeException(nameof(dim), $"{op}: dimension {dim} is out of range for a tensor of rank {rank}");
        return d;
    }

    public override string ToString()
    {
        if (IsDisposed) return $"Tensor{NameSuffix}(disposed)";
        var head = $"Tensor{NameSuffix}({FormatShape(Shape)}, {DType}, {Device}{(RequiresGrad ? ", requires_grad" : "")})";
        if (Numel > 16 || !DType.IsFloating()) return head;
        return head + " " + "[" + string.Join(", ", ToArray().Select(v => v.ToString("G6"))) + "]";
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Tensor NewLike(Tensor like, ReadOnlySpan<int> shape, DType dtype = DType.Float32) =>
        Empty(shape, dtype, like.Device);
}
