using Distill.Mesh.Controller.Kubernetes.Reconciliation;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Controller.Kubernetes;

/// <summary>
/// The operator in a controller replica: it campaigns for the coordination.k8s.io/v1 Lease
/// "distill-controller" and runs the control loop only while it leads, so two replicas never both
/// reconcile; a replica that loses the lease stops its loop at once, and another takes over once the
/// lease expires. Every replica serves the runs API.
/// </summary>
public sealed class KubernetesOperator(KubernetesConnection connection, OperatorLoop loop, IOptions<KubernetesOptions> options, ILogger<KubernetesOperator> logger) : BackgroundService
{
    public const string LeaseName = "distill-controller";

    private volatile bool _leading;

    /// <summary>This replica's identity in the lease.</summary>
    public string Identity { get; } = options.Value.Identity ?? Environment.GetEnvironmentVariable("POD_NAME") ?? $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..6]}";

    public bool IsLeader => _leading;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        var lease = new LeaseLock(connection.Client, connection.Namespace, LeaseName, Identity);
        using var elector = new LeaderElector(new LeaderElectionConfig(lease)
        {
            LeaseDuration = settings.LeaseDuration,
            RenewDeadline = settings.RenewDeadline,
            RetryPeriod = settings.RetryPeriod,
        });
        CancellationTokenSource? leading = null;
        Task? running = null;
        elector.OnStartedLeading += () =>
        {
            logger.LogInformation("{Identity} leads: reconciling runs in {Namespace}", Identity, connection.Namespace);
            leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            _leading = true;
            running = Task.Run(() => loop.RunAsync(connection.Namespace, leading.Token), CancellationToken.None);
        };
        elector.OnStoppedLeading += () =>
        {
            _leading = false;
            leading?.Cancel();
            logger.LogInformation("{Identity} stopped leading", Identity);
        };
        elector.OnNewLeader += leader => logger.LogInformation("The leader is {Leader}", leader);
        try
        {
            await elector.RunAndTryToHoldLeadershipForeverAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _leading = false;
            leading?.Cancel();
            if (running is not null)
                await running.ContinueWith(_ => { }, TaskScheduler.Default);
            leading?.Dispose();
        }
    }
}
