using System.Diagnostics;
using Distill.Mesh.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Trainer.Runs;

/// <summary>Exit codes of the trainer's job mode, for a Kubernetes Job's pod failure policy.</summary>
public static class JobExit
{
    public const int Succeeded = 0;

    /// <summary>The run failed (a bad spec or data, a stage error): retrying will not help.</summary>
    public const int Failed = 1;

    public const int Cancelled = 3;

    /// <summary>Stopped by SIGTERM before it finished (evicted, preempted): a new pod resumes it from its checkpoint.</summary>
    public const int Interrupted = 143;
}

/// <summary>
/// Job mode (Trainer:JobSpec set): the trainer runs exactly the run in that spec file, serving
/// Watch and List while it runs, then exits with <see cref="JobExit"/>'s code. Restart-safe: a pod
/// that finds the run finished on the volume exits 0 at once; one that finds it interrupted resumes
/// it (finished stages kept, training from its checkpoint).
/// </summary>
public sealed class TrainerJob(RunManager runs, ProgressReporter reporter, IOptions<TrainerOptions> options, JobOutcome outcome, IConfiguration configuration, ILogger<TrainerJob> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        var id = settings.JobId();
        // The pod's spans join the run's trace: the operator hands the Submit call's context down as TRACEPARENT.
        using var job = MeshTelemetry.Source.StartActivity("trainer.job", ActivityKind.Internal,
            ActivityContext.TryParse(configuration["TRACEPARENT"], null, out var parent) ? parent : default).ForRun(id);
        TrainerRun run;
        try
        {
            run = runs.Start(id, File.ReadAllText(settings.JobSpec!), [], settings.JobStageList());
        }
        catch (Exception e) when (e is ArgumentException or RunConflictException or IOException or UnauthorizedAccessException)
        {
            logger.LogCritical("Job run {RunId} ({Spec}) cannot start: {Reason}", id, settings.JobSpec, e.Message);
            await outcome.ExitAsync(JobExit.Failed, stoppingToken);
            return;
        }

        using var reporting = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var report = settings.ReportTo is { Length: > 0 } address ? reporter.ReportAsync(run, address, reporting.Token) : Task.CompletedTask;
        try
        {
            await foreach (var _ in run.WatchAsync(stoppingToken))
            {
            }

            // The last events reach the controller before the pod goes (a stuck controller is not waited for long).
            await report.WaitAsync(TimeSpan.FromSeconds(10), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // SIGTERM: the run manager checkpoints the run as the host stops.
            outcome.Set(JobExit.Interrupted);
            return;
        }

        await reporting.CancelAsync();
        var code = run.Status switch
        {
            RunStatus.Succeeded => JobExit.Succeeded,
            RunStatus.Cancelled => JobExit.Cancelled,
            RunStatus.Interrupted => JobExit.Interrupted,
            _ => JobExit.Failed,
        };
        logger.LogInformation("Job run {RunId} ended {Status}{Error}", id, run.Status, run.Error is null ? "" : $": {run.Error}");
        await outcome.ExitAsync(code, stoppingToken);
    }
}
