using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Training.Teachers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Cli.Hosting;

/// <summary>Hosts mesh services on Kestrel (HTTP/2 without TLS) from the CLI.</summary>
internal static class ServiceHost
{
    /// <summary>Starts the teacher service; port 0 picks a free port. Returns the app and its address.</summary>
    public static async Task<(WebApplication App, string Address)> StartTeacherAsync(string modelFolder, InProcessTeacher? teacher, int port, string? redis, bool quiet, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2));
        if (quiet)
            builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Teacher:Model"] = modelFolder,
            ["Teacher:Redis"] = redis ?? "",
        });
        builder.AddTeacherService(teacher);
        var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapTeacherService();
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, address);
    }
}
