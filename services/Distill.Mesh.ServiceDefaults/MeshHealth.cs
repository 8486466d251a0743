using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Distill.Mesh.ServiceDefaults;

/// <summary>
/// The grpc.health.v1 services every mesh service answers: <c>liveness</c> (the process serves
/// requests), <c>readiness</c> (it can do its work: the teacher's model is loaded and warmed up, the
/// registry's database is open) and the default <c>""</c>, which is readiness. Kubernetes probes
/// them with <c>grpc: { port, service }</c>.
/// </summary>
public static class MeshHealth
{
    public const string LivenessService = "liveness";

    public const string ReadinessService = "readiness";

    /// <summary>Tag of the checks liveness reports.</summary>
    public const string Live = "live";

    /// <summary>Tag of the checks readiness reports.</summary>
    public const string Ready = "ready";

    /// <summary>
    /// Waits until a started host's readiness checks pass (for hosts that compose services in one
    /// process). Throws when the host stops first, with the failing checks' descriptions.
    /// </summary>
    public static async Task WaitUntilReadyAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var health = services.GetRequiredService<HealthCheckService>();
        var stopping = services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        while (true)
        {
            var report = await health.CheckHealthAsync(r => r.Tags.Contains(Ready), cancellationToken);
            if (report.Status == HealthStatus.Healthy)
                return;
            if (stopping.IsCancellationRequested)
            {
                // Asked again: the report above may predate the failure that stopped the host.
                report = await health.CheckHealthAsync(r => r.Tags.Contains(Ready), CancellationToken.None);
                throw new InvalidOperationException($"the service stopped before it was ready: {string.Join("; ", report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy).Select(e => e.Value.Description))}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        }
    }
}
