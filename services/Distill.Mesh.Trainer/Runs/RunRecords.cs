using Distill.Mesh.Training.Recipes;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>What a run was started with (spec.json in its folder; written only once the spec parsed and validated).</summary>
/// <param name="RunId">The run.</param>
/// <param name="Spec">The spec text as given.</param>
/// <param name="Overrides">Overrides applied to it.</param>
/// <param name="Stages">The stages this trainer runs (empty: all of the spec's).</param>
/// <param name="Sha256">The canonical spec's hash (the same run is the same hash).</param>
/// <param name="Created">When the run was accepted.</param>
public sealed record RunSpecRecord(string RunId, string Spec, IReadOnlyList<string> Overrides, IReadOnlyList<string> Stages, string Sha256, DateTime Created);

/// <summary>Where a run is (state.json, rewritten atomically at each transition).</summary>
public enum RunStatus
{
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

/// <summary>Where one stage is.</summary>
public enum StageState
{
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

/// <summary>One stage of a run, as persisted and reported.</summary>
public sealed record StageRecord(string Name)
{
    public StageState State { get; init; } = StageState.Pending;

    public string Message { get; init; } = "";

    public long Done { get; init; }

    public long Total { get; init; }

    public DateTime? Started { get; init; }

    public DateTime? Ended { get; init; }

    /// <summary>The stage's evaluation (evaluate; train's final evaluation).</summary>
    public EvalResult? Eval { get; init; }

    /// <summary>What the stage produced: a model or adapter folder, or the published name:version.</summary>
    public string? Output { get; init; }
}

/// <summary>A run's persisted state.</summary>
public sealed record RunRecord(string RunId, RunStatus Status, string Recipe, string? Error, IReadOnlyList<StageRecord>? Stages = null);
