using Microsoft.Extensions.Hosting;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>How a job mode (a service that does one piece of work and exits) ends its host.</summary>
public static class JobLifetime
{
    /// <summary>
    /// Completes once the host has started (its endpoints bound). A job that stops the host
    /// before then would cancel the start itself, which ends the process with an unhandled
    /// exception instead of the job's exit code.
    /// </summary>
    public static Task WhenStartedAsync(this IHostApplicationLifetime lifetime, CancellationToken cancellationToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        return started.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Ends the process with <paramref name="exitCode"/> once the host has started.</summary>
    public static async Task ExitAsync(this IHostApplicationLifetime lifetime, int exitCode, CancellationToken cancellationToken)
    {
        Environment.ExitCode = exitCode;
        try
        {
            await lifetime.WhenStartedAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return; // the host is stopping anyway
        }

        lifetime.StopApplication();
    }
}
