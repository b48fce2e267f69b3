using System.Globalization;
using System.Runtime.InteropServices;
using NativeReasoner.IO;
using NativeReasoner.Kernels;
using NativeReasoner.Nn;

namespace NativeReasoner.Optim;

/// <summary>
/// Saving and restoring the AdamW state (first and second moments, per-parameter step counts, the step
/// counter), so a resumed run continues exactly as an uninterrupted one: restarting the moments from zero
/// would re-apply bias correction from t = 1 and change every later update.
/// </summary>
public sealed partial class AdamW
{
    private const string FormatName = "nativereasoner-adamw-v1";

    /// <summary>Every parameter of every group, in order: the identity of a state entry in the file.</summary>
    private List<Parameter> OrderedParameters() => ParamGroups.SelectMany(g => g.Parameters).ToList();

    /// <summary>
    /// Writes the state to a safetensors file (atomically: an existing file is replaced only once the new
    /// one is complete). Parameters are identified by their position in the optimizer's groups, and their
    /// shapes are checked on load.
    /// </summary>
    public void SaveState(string path)
    {
        var ps = OrderedParameters();
        var steps = new long[ps.Count];
        var tensors = new List<SafetensorsTensor>();
        for (int i = 0; i < ps.Count; i++)
        {
            if (!_state.TryGetValue(ps[i], out var s)) continue;
            steps[i] = s.Step;
            var shape = ps[i].Shape.ToArray().Select(d => (long)d).ToArray();
            tensors.Add(new SafetensorsTensor($"exp_avg.{i}", DType.Float32, shape, MemoryMarshal.AsBytes(s.M.ToArray().AsSpan()).ToArray()));
            tensors.Add(new SafetensorsTensor($"exp_avg_sq.{i}", DType.Float32, shape, MemoryMarshal.AsBytes(s.V.ToArray().AsSpan()).ToArray()));
        }
        tensors.Add(new SafetensorsTensor("step", DType.Int64, [steps.Length], MemoryMarshal.AsBytes(steps.AsSpan()).ToArray()));
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null) Directory.CreateDirectory(dir);
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["step_count"] = StepCount.ToString(CultureInfo.InvariantCulture),
            ["num_parameters"] = ps.Count.ToString(CultureInfo.InvariantCulture),
        });
    }

    /// <summary>
    /// Replaces the state with the one saved by <see cref="SaveState"/>. The file must describe the same
    /// parameters (count and shapes); anything else is an <see cref="InvalidDataException"/> naming the
    /// file, and the current state is left untouched.
    /// </summary>
    public void LoadState(string path)
    {
        var ps = OrderedParameters();
        using var file = SafetensorsFile.Open(path);
        if (file.Metadata.GetValueOrDefault("format") != FormatName)
            throw new InvalidDataException($"{path}: not an AdamW state file (format '{file.Metadata.GetValueOrDefault("format")}', expected '{FormatName}')");
        var steps = file.ReadInt64("step");
        if (steps.Length != ps.Count)
            throw new InvalidDataException($"{path}: state for {steps.Length} parameters, but the optimizer has {ps.Count}");
        // Read and check everything before touching the live state, so a bad file changes nothing.
        var loaded = new Dictionary<Parameter, (float[] M, float[] V, long Step)>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < ps.Count; i++)
        {
            if (steps[i] == 0) continue;
            var m = file.ReadFloat32($"exp_avg.{i}");
            var v = file.ReadFloat32($"exp_avg_sq.{i}");
            if (m.Length != ps[i].Numel || v.Length != ps[i].Numel)
                throw new InvalidDataException($"{path}: parameter {i}{(ps[i].Name == null ? "" : $" '{ps[i].Name}'")} has {ps[i].Numel} elements, the saved state {m.Length}");
            loaded[ps[i]] = (m, v, steps[i]);
        }
        DisposeState();
        foreach (var (p, (m, v, step)) in loaded)
        {
            var s = new State(NewState(p), NewState(p)) { Step = step };
            s.M.CopyFromHost(MemoryMarshal.AsBytes(m.AsSpan()));
            s.V.CopyFromHost(MemoryMarshal.AsBytes(v.AsSpan()));
            _state[p] = s;
        }
        StepCount = long.Parse(file.Metadata.GetValueOrDefault("step_count") ?? "0", CultureInfo.InvariantCulture);
    }
}
