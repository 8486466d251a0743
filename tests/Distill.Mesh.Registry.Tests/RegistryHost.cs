using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Registry.Extensions;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Testing;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Registry.Tests;

/// <summary>The registry service on an in-memory test server over a temp folder.</summary>
internal sealed class RegistryHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly bool _ownsFolder;

    private RegistryHost(WebApplication app, TempFolder folder, GrpcChannel channel, bool ownsFolder)
    {
        _app = app;
        _ownsFolder = ownsFolder;
        Folder = folder;
        Channel = channel;
        Client = new RegistryService.RegistryServiceClient(channel.Intercept(new DefaultDeadline(TimeSpan.FromSeconds(60))));
    }

    public TempFolder Folder { get; }

    /// <summary>The registry's root folder.</summary>
    public string Root => Folder.Combine("registry");

    public GrpcChannel Channel { get; }

    public RegistryService.RegistryServiceClient Client { get; }

    public static async Task<RegistryHost> StartAsync(Dictionary<string, string?>? settings = null, TempFolder? folder = null, Action<WebApplicationBuilder>? configure = null)
    {
        var ownsFolder = folder is null;
        folder ??= new TempFolder();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Registry:Root"] = folder.Combine("registry") });
        if (settings is not null)
            builder.Configuration.AddInMemoryCollection(settings);
        builder.AddRegistryService();
        configure?.Invoke(builder);
        var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapRegistryService();
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = app.GetTestServer().CreateHandler() });
        return new RegistryHost(app, folder, channel, ownsFolder);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
        // A folder the test passed in outlives the host (a restart over the same registry).
        if (_ownsFolder)
            Folder.Dispose();
    }
}
