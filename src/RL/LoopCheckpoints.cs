// Source: PyTorch Lightning's periodic checkpoints and resume from the last valid one (weights, optimizer, loop state).
using System.Text.Json.Nodes;
using NativeReasoner.Distributed;
using NativeReasoner.Model;
using NativeReasoner.Optim;

namespace NativeReasoner.RL;

/// <summary>
/// The crash-safe checkpoints of one training loop of a pipeline (an SFT or a GRPO stage): weights, AdamW moments and
/// the loop's own state (step, sampler, data position) in <c>DIR/checkpoints/</c>, written atomically by
/// <see cref="RunCheckpoints"/> every <see cref="CrashSafety.CheckpointEveryMinutes"/> and at the loop's end. A loop
/// asks <see cref="Find"/> before it starts, cuts its metrics back to the step found, restores with
/// <see cref="Restore"/> and goes on from there. Given a process group, rank 0 alone writes and tidies them; the
/// others read the checkpoint it found, and every rank resumes from the same step (or all stop with an error).
/// </summary>
public sealed class LoopCheckpoints
{
    private readonly RunCheckpoints _store;
    private readonly CrashSafety _safety;
    private readonly Action<string> _progress;
    private readonly TimeProvider _time;
    private long _lastSaveTime;
    private int _lastSavedStep = -1;
    private readonly IProcessGroup? _group;

    private bool Root => _group == null || _group.Rank == 0;

    public LoopCheckpoints(string directory, CrashSafety safety, Action<string>? progress, TimeProvider? time = null,
        IProcessGroup? group = null)
    {
        _group = group is { Size: > 1 } ? group : null;
        _progress = progress ?? (_ => { });
        // RunCheckpoints' messages end in a newline; the pipelines print line by line.
        _store = new RunCheckpoints(directory, m => _progress(m.TrimEnd('\n')));
        _safety = safety.Validate();
        _time = time ?? TimeProvider.System;
        _lastSaveTime = _time.GetTimestamp();
    }

    /// <summary>Where the checkpoints go (<c>DIR/checkpoints</c>).</summary>
    public string Directory => _store.Directory;

    /// <summary>The newest valid checkpoint (reported), or null for a fresh start.</summary>
    public RunCheckpoints.Found? Find()
    {
        // Rank 0 first: it removes unfinished writes; then the others read the same newest checkpoint.
        var found = Root ? _store.LoadNewest() : null;
        if (_group != null)
        {
            _group.Barrier();
            if (!Root) found = _store.LoadNewest();
            long mine = found?.Step ?? -1;
            using var rootStep = Tensor.FromArray([mine], [1], Device.Cpu);
            _group.Broadcast(rootStep, 0);
            long expected = rootStep.ToInt64Array()[0];
            if (_group.MaxCount(mine != expected ? 1 : 0) > 0)
                throw new InvalidOperationException($"the ranks found different checkpoints in {Directory} (rank " +
                    $"{_group.Rank}: step {mine}, rank 0: step {expected}); they must share one directory");
        }
        if (found != null)
        {
            _progress($"resuming from {found.Path}: step {found.Step}");
            _lastSavedStep = found.Step;
        }
        return found;
    }

    /// <summary>Copies the checkpoint's weights (and buffers) into <paramref name="model"/> and its moments into
    /// <paramref name="optimizer"/>.</summary>
    public void Restore(RunCheckpoints.Found found, ICausalLM model, AdamW optimizer)
    {
        using (var saved = CausalLMRegistry.Load(found.Path, model.Device)) CopyWeights(saved, model);
        OptimizerCheckpoint.TryLoad(optimizer, found.Path, m => _progress(m.TrimEnd('\n')));
    }

    /// <summary>
    /// Saves a checkpoint after <paramref name="step"/> steps when the interval has passed or the loop ended
    /// (<paramref name="final"/>); never twice for the same step. <paramref name="state"/> is the loop's own state.
    /// </summary>
    public void SaveIfDue(int step, ICausalLM model, AdamW optimizer, Func<JsonObject> state, bool final)
    {
        if (step == _lastSavedStep || !Root) return;
        if (!final && _time.GetElapsedTime(_lastSaveTime).TotalMinutes < _safety.CheckpointEveryMinutes) return;
        _store.Save(0, step, state(), dir =>
        {
            model.Save(dir);
            OptimizerCheckpoint.Save(optimizer, dir);
        });
        _lastSaveTime = _time.GetTimestamp();
        _lastSavedStep = step;
    }

    /// <summary>Removes the checkpoints once the loop's outputs are written.</summary>
    public void Clear()
    {
        if (Root) _store.Clear();
    }

    /// <summary>Parameters and buffers (the router's e_score_correction_bias moves in training) by name.</summary>
    internal static void CopyWeights(ICausalLM from, ICausalLM to)
    {
        var parameters = from.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        using var noGrad = Tensor.NoGrad();
        foreach (var (name, p) in to.NamedParameters())
        {
            if (!parameters.TryGetValue(name, out var source))
                throw new InvalidDataException($"checkpoint has no parameter {name}");
            p.CopyFrom_(source);
        }
        var buffers = from.NamedBuffers().ToDictionary(b => b.Name, b => b.Buffer);
        foreach (var (name, b) in to.NamedBuffers())
            if (buffers.TryGetValue(name, out var source)) b.CopyFrom_(source);
    }
}
