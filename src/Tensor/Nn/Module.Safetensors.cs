using NativeReasoner.IO;
using NativeReasoner.Kernels;

namespace NativeReasoner.Nn;

// Checkpoint glue between the module tree and safetensors files.
public abstract unsafe partial class Module
{
    /// <summary>
    /// Writes <see cref="StateDict"/> (parameters and buffers, each in its own dtype, under its dotted
    /// name) to one safetensors file, atomically. A tied parameter is written under each of its names.
    /// </summary>
    public void SaveSafetensors(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var tensors = new List<SafetensorsTensor>();
        foreach (var (name, t) in StateDict())
        {
            var bytes = new byte[checked(t.Numel * t.DType.SizeOf())];
            // Suspended: the dense view/copy is disposed right here, never by a caller's scope.
            using (TensorScope.Suspend())
            using (var dense = t.ContiguousNoGrad())
                dense.CopyToHost(bytes);
            tensors.Add(new SafetensorsTensor(name, t.DType, t.Shape.ToArray().Select(d => (long)d).ToArray(), bytes));
        }
        SafetensorsWriter.Write(path, tensors, metadata);
    }

    /// <summary>
    /// Loads parameters and buffers from a safetensors file with the rules of <see cref="LoadStateDict"/>
    /// (strict key matching, shape check before any copy, bfloat16/float16 entries converted). Tensors are
    /// read one at a time.
    /// </summary>
    public LoadStateDictResult LoadSafetensors(string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = SafetensorsFile.Open(path);
        return LoadState(
            file.Entries.Select(e => e.Name),
            name =>
            {
                var e = file.GetEntry(name);
                return (e.Shape.Select(d => checked((int)d)).ToArray(), e.DType);
            },
            name =>
            {
                var e = file.GetEntry(name);
                var t = Tensor.Empty(e.Shape.Select(d => checked((int)d)).ToArray(), e.DType);
                t.CopyFromHost(file.GetBytes(name));
                return (t, true);
            },
            strict, "LoadSafetensors", $"'{path}'");
    }
}
