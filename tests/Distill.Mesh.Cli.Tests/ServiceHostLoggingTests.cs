using Distill.Mesh.Cli.Hosting;
using Distill.Mesh.Registry.Extensions;
using Distill.Mesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Cli.Tests;

/// <summary>Services hosted by the CLI log their own lines, not ASP.NET's per-request ones.</summary>
public sealed class ServiceHostLoggingTests : IDisposable
{
    private readonly TempFolder _dir = new();

    [Fact]
    public async Task Per_request_and_health_probe_lines_are_off_and_the_services_own_lines_on()
    {
        var (app, _) = await ServiceHost.StartAsync(0, b => b.AddRegistryService(), a => a.MapRegistryService(),
            new Dictionary<string, string?> { ["Registry:Root"] = _dir.Combine("registry") }, quiet: false, default);
        await using (app)
        {
            var loggers = app.Services.GetRequiredService<ILoggerFactory>();
            Assert.False(loggers.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Information));
            Assert.False(loggers.CreateLogger("Microsoft.AspNetCore.Routing.EndpointMiddleware").IsEnabled(LogLevel.Information));
            Assert.False(loggers.CreateLogger("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService").IsEnabled(LogLevel.Error));
            Assert.True(loggers.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Warning));
            Assert.True(loggers.CreateLogger("Distill.Mesh.Teacher.Scoring.TeacherLoader").IsEnabled(LogLevel.Information));
        }
    }

    [Fact]
    public async Task A_setting_given_to_the_host_still_wins()
    {
        var (app, _) = await ServiceHost.StartAsync(0, b => b.AddRegistryService(), a => a.MapRegistryService(),
            new Dictionary<string, string?> { ["Registry:Root"] = _dir.Combine("registry2"), ["Logging:LogLevel:Microsoft.AspNetCore"] = "Information" }, quiet: false, default);
        await using (app)
            Assert.True(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Information));
    }

    public void Dispose() => _dir.Dispose();
}
