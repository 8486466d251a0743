using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Specs.Runs;

namespace Distill.Mesh.Controller.Runs;

/// <summary>
/// Where runs execute: the local backend (the services on this machine) or Kubernetes (a pod per
/// stage). The runs API validates a spec completely before it reaches a backend; a backend makes
/// Submit idempotent per run id and keeps its runs across controller restarts.
/// </summary>
public interface IRunBackend
{
    /// <summary>What validation can check for this backend (whether the spec's folders are visible here).</summary>
    RunValidation Validation { get; }

    /// <summary>Creates the run, or returns it when the id exists with the same spec.</summary>
    /// <exception cref="RunConflictException">The id exists with another spec.</exception>
    Task<Run> SubmitAsync(string runId, string specText, IReadOnlyList<string> overrides, ParsedRunSpec spec, CancellationToken cancellationToken);

    /// <exception cref="KeyNotFoundException">No such run.</exception>
    Task<Run> GetAsync(string runId, CancellationToken cancellationToken);

    Task<IReadOnlyList<Run>> ListAsync(CancellationToken cancellationToken);

    /// <summary>A snapshot of the run, then its events until it ends.</summary>
    IAsyncEnumerable<RunEvent> WatchAsync(string runId, CancellationToken cancellationToken);

    Task<Run> CancelAsync(string runId, CancellationToken cancellationToken);
}

/// <summary>A run id that exists with another spec (the runs API answers ALREADY_EXISTS).</summary>
public sealed class RunConflictException(string message) : Exception(message);

/// <summary>Helpers for what backends answer.</summary>
public static class RunAnswers
{
    /// <summary>Marks a Submit answer as the existing run (same id, same spec): nothing new was started.</summary>
    public static Run Resubmission(this Run run)
    {
        run.Resubmitted = true;
        return run;
    }
}
