using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Testing;
using Distill.Mesh.Training.Teachers;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Teacher.Tests;

/// <summary>The teacher service on an in-memory test server, with a tiny teacher saved to a temp folder.</summary>
internal sealed class TeacherHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TempFolder _dir;

    private TeacherHost(WebApplication app, TempFolder dir, InProcessTeacher teacher, GrpcChannel channel)
    {
        _app = app;
        _dir = dir;
        Teacher = teacher;
        Channel = channel;
    }

    public InProcessTeacher Teacher { get; }

    /// <summary>The teacher's HF folder.</summary>
    public string TeacherFolder => _dir.Combine("teacher");

    public GrpcChannel Channel { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<TeacherHost> StartAsync(Dictionary<string, string?>? settings = null)
    {
        var dir = new TempFolder();
        using (var model = TinyModels.Create("llama", seed: 21))
            TinyModels.SaveWithByteTokenizer(model, dir.Combine("teacher"));
        var teacher = InProcessTeacher.Load(dir.Combine("teacher"));
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Teacher:Model"] = dir.Combine("teacher") });
        if (settings is not null)
            builder.Configuration.AddInMemoryCollection(settings);
        builder.AddTeacherService(teacher);
        var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapTeacherService();
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await MeshHealth.WaitUntilReadyAsync(app.Services, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = app.GetTestServer().CreateHandler() });
        return new TeacherHost(app, dir, teacher, channel);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
        _dir.Dispose();
    }
}
