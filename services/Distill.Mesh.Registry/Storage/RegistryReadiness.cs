using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Distill.Mesh.Registry.Storage;

/// <summary>
/// Opens the store when the host starts (its database, and the sweep of interrupted pushes), so a
/// registry that cannot open its folder fails at start instead of on the first push; readiness
/// reports the store open.
/// </summary>
public sealed class RegistryReadiness(IServiceProvider services) : IHostedService, IHealthCheck
{
    private volatile string? _root;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _root = services.GetRequiredService<ArtifactStore>().Root;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) => Task.FromResult(
        _root is { } root ? HealthCheckResult.Healthy($"database open in {root}") : HealthCheckResult.Unhealthy("opening the database"));
}
