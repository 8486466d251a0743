namespace Distill.Mesh.Trainer.Runs;

/// <summary>What a run was started with (kept as spec.json in its folder).</summary>
public sealed record RunSpec(string RunId, string ConfigYaml, IReadOnlyList<string> Overrides, string? TeacherEndpoint);

/// <summary>Where a run is (kept as state.json at each transition).</summary>
public enum RunStatus
{
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

/// <summary>A run's persisted state.</summary>
public sealed record RunRecord(string RunId, RunStatus Status, string Recipe, string? Error);
