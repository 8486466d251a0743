namespace Distill.Mesh.Trainer;

/// <summary>Trainer service settings (configuration section "Trainer").</summary>
public sealed class TrainerOptions
{
    /// <summary>The volume runs live on: one folder per run (spec, state, checkpoints, outputs).</summary>
    public string RunsDirectory { get; set; } = "runs";

    /// <summary>How long a shutdown waits for running runs to checkpoint.</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromMinutes(2);
}
