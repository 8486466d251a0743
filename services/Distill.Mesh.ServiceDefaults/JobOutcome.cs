using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// How a job-mode host ends: its exit code, and the stop of the host once the job is done. The
/// process takes the code as its own; a host that shares its process with others (a test's
/// simulated kubelet runs pods in process) registers one with <see cref="OwnsProcess"/> false and
/// reads <see cref="ExitCode"/> after the host stops.
/// </summary>
public sealed class JobOutcome(IHostApplicationLifetime lifetime)
{
    /// <summary>Whether the code becomes the process's exit code.</summary>
    public bool OwnsProcess { get; init; } = true;

    /// <summary>The job's exit code, once it has one.</summary>
    public int? ExitCode { get; private set; }

    /// <summary>Records the code without stopping the host (the host is stopping already: SIGTERM).</summary>
    public void Set(int exitCode)
    {
        ExitCode = exitCode;
        if (OwnsProcess)
            Environment.ExitCode = exitCode;
    }

    /// <summary>
    /// Records the code and stops the host once it has started (its endpoints bound). A job that
    /// stopped the host before then would cancel the start itself, which ends the process with an
    /// unhandled exception instead of the job's exit code.
    /// </summary>
    public async Task ExitAsync(int exitCode, CancellationToken cancellationToken)
    {
        Set(exitCode);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            try
            {
                await started.Task.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return; // the host is stopping anyway
            }
        }

        lifetime.StopApplication();
    }

    /// <summary>
    /// The environment a Kubernetes Job gives its pod, read through configuration (environment
    /// variables are part of it): the run id (DISTILL_RUN_ID) and an Indexed Job's completion
    /// index (JOB_COMPLETION_INDEX).
    /// </summary>
    public static (string? RunId, int? Index) FromEnvironment(IConfiguration configuration) =>
        (configuration["DISTILL_RUN_ID"] is { Length: > 0 } id ? id : null,
         int.TryParse(configuration["JOB_COMPLETION_INDEX"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) ? index : null);
}
