// Source: PyTorch Lightning's ModelCheckpoint cadence (train_time_interval) and TRL's overwrite_output_dir.
namespace NativeReasoner.RL;

/// <summary>
/// How a pipeline run protects itself against abrupt stops: the wall time between periodic checkpoints of its
/// training loops (each loop's end is one too; 0 checkpoints after every step, as the kill tests do) and whether
/// a run directory of another configuration is replaced instead of refused.
/// </summary>
public sealed record CrashSafety
{
    public double CheckpointEveryMinutes { get; init; } = 2;
    public bool Overwrite { get; init; }

    public CrashSafety Validate()
    {
        if (!(CheckpointEveryMinutes >= 0) || double.IsInfinity(CheckpointEveryMinutes))
            throw new ArgumentException(
                $"checkpoint interval must be a finite number ≥ 0 of minutes, got {CheckpointEveryMinutes}");
        return this;
    }
}
