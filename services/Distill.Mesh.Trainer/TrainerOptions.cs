namespace Distill.Mesh.Trainer;

/// <summary>Trainer service settings (configuration section "Trainer"; environment variables <c>Trainer__RunsDirectory</c>, ...).</summary>
public sealed class TrainerOptions
{
    /// <summary>The volume runs live on: one folder per run (spec, state, checkpoints, outputs).</summary>
    public string RunsDirectory { get; set; } = "runs";

    /// <summary>The registry a run's publish stage pushes to when its spec names none.</summary>
    public string Registry { get; set; } = Specs.Configuration.PublishSettings.LocalRegistry;

    /// <summary>How long a shutdown (SIGTERM) waits for running runs to checkpoint.</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Job mode: run exactly the run spec in this file, then exit 0 (succeeded) or non-zero.</summary>
    public string? JobSpec { get; set; }

    /// <summary>Job mode: the run's id (default: the environment's DISTILL_RUN_ID, else the spec file's name).</summary>
    public string? JobRunId { get; set; }

    /// <summary>Job mode: where to report the run's events (the controller's address, on Kubernetes).</summary>
    public string? ReportTo { get; set; }

    /// <summary>Job mode: the stages of the spec this pod runs, comma-separated (default: all).</summary>
    public string? JobStages { get; set; }

    /// <summary>Job mode's run id; in job mode this is the only run the trainer resumes from the volume (others belong to other pods).</summary>
    public string JobId() => JobRunId ?? Path.GetFileNameWithoutExtension(JobSpec ?? "");

    /// <summary>Job mode's stages.</summary>
    public IReadOnlyList<string> JobStageList() => (JobStages ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
