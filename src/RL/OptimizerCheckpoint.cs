// Source: torch.optim.AdamW state_dict (exp_avg, exp_avg_sq, step) saved as safetensors.
using NativeReasoner.Optim;

namespace NativeReasoner.RL;

/// <summary>The AdamW state saved beside a checkpoint (<c>optimizer.safetensors</c>), so resuming continues the moments.</summary>
public static class OptimizerCheckpoint
{
    public const string FileName = "optimizer.safetensors";

    public static void Save(AdamW optimizer, string checkpointDir) => optimizer.SaveState(Path.Combine(checkpointDir, FileName));

    /// <summary>Loads the state when the checkpoint has one; an older checkpoint without it resumes with fresh moments (reported).</summary>
    public static bool TryLoad(AdamW optimizer, string checkpointDir, Action<string>? progress = null)
    {
        var path = Path.Combine(checkpointDir, FileName);
        if (!File.Exists(path))
        {
            progress?.Invoke($"no {FileName} in {checkpointDir}: optimizer moments restart from zero\n");
            return false;
        }
        optimizer.LoadState(path);
        return true;
    }
}
