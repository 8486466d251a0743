using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Training.Teachers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Cli.Hosting;

/// <summary>Hosts mesh services on Kestrel (HTTP/2 on loopback; TLS when Mesh:TlsCertificate is set) from the CLI.</summary>
internal static class ServiceHost
{
    /// <summary>
    /// Starts one service; port 0 picks a free port. Returns the app and its address. Its log goes to
    /// the console (none when quiet), or as lines to <c>log</c> when given (a live progress display's log).
    /// </summary>
    public static async Task<(WebApplication App, string Address)> StartAsync(int port, Action<WebApplicationBuilder> add, Action<WebApplication> map, IDictionary<string, string?> settings, bool quiet, CancellationToken cancellationToken,
        TextWriter? log = null)
    {
        var builder = WebApplication.CreateBuilder();
        // The listening endpoint (and its TLS) comes from the mesh defaults: loopback only. ASP.NET's
        // per-request lines and the health checks' "unhealthy while loading" lines stay out of the
        // console, as in the services' own appsettings.json.
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:ListenAddress"] = "127.0.0.1",
            ["Mesh:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
            ["Logging:LogLevel:Microsoft.Extensions.Diagnostics.HealthChecks"] = "Critical",
        });
        if (quiet || log is not null)
            builder.Logging.ClearProviders();
        if (log is not null && !quiet)
            builder.Logging.AddProvider(new LineLoggerProvider(log));
        // The CLI owns Ctrl-C: a host's own console lifetime would take the signal and leave the
        // command waiting.
        builder.Services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, CommandLifetime>();
        builder.Configuration.AddInMemoryCollection(settings);
        add(builder);
        var app = builder.Build();
        app.MapDefaultEndpoints();
        map(app);
        await app.StartAsync(cancellationToken);
        await MeshHealth.WaitUntilReadyAsync(app.Services, cancellationToken);
        // The gRPC address, not the scrape or probe endpoint's.
        var extra = new[] { builder.Configuration["Mesh:MetricsPort"], builder.Configuration["Mesh:HealthPort"] }.Where(p => !string.IsNullOrEmpty(p)).Select(p => $":{p}").ToList();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First(a => !extra.Any(e => a.EndsWith(e, StringComparison.Ordinal)));
        return (app, address);
    }

    private sealed class CommandLifetime : Microsoft.Extensions.Hosting.IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Starts the teacher service.</summary>
    public static Task<(WebApplication App, string Address)> StartTeacherAsync(string modelFolder, InProcessTeacher? teacher, int port, string? redis, bool quiet, CancellationToken cancellationToken) =>
        StartAsync(port, b => b.AddTeacherService(teacher), a => a.MapTeacherService(),
            new Dictionary<string, string?> { ["Teacher:Model"] = modelFolder, ["Teacher:Redis"] = redis ?? "" }, quiet, cancellationToken);
}
