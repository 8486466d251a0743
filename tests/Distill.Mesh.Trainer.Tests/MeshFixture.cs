using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Testing;
using Distill.Mesh.Trainer.Extensions;
using Distill.Mesh.Trainer.Runs;
using Distill.Mesh.Training.Teachers;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Trainer.Tests;

/// <summary>A teacher service and trainer services on in-memory test servers, with tiny models and data on disk.</summary>
internal sealed class MeshFixture : IAsyncDisposable
{
    private readonly List<WebApplication> _apps = [];

    public TempFolder Dir { get; } = new();

    public GrpcChannel TeacherChannel { get; private set; } = null!;

    public string TeacherFolder => Dir.Combine("teacher");

    public string StudentFolder => Dir.Combine("student");

    public string DatasetPath => Dir.Combine("data.jsonl");

    public string RunsDirectory => Dir.Combine("runs");

    public static async Task<MeshFixture> StartAsync()
    {
        var fixture = new MeshFixture();
        using (var teacher = TinyModels.Create("llama", 31))
            TinyModels.SaveWithByteTokenizer(teacher, fixture.TeacherFolder);
        using (var student = TinyModels.Create("qwen2", 32))
            TinyModels.SaveWithByteTokenizer(student, fixture.StudentFolder);
        File.WriteAllLines(fixture.DatasetPath, Enumerable.Range(0, 24).Select(i => $"{{\"text\": \"line {i} holds {new string((char)('a' + i % 26), i % 5 + 2)}\"}}"));
        var teacherApp = await fixture.HostAsync(b => b.AddTeacherService(), a => a.MapTeacherService(), new() { ["Teacher:Model"] = fixture.TeacherFolder });
        fixture.TeacherChannel = Channel(teacherApp);
        return fixture;
    }

    /// <summary>A trainer on the fixture's runs volume; its runs reach the fixture's teacher.</summary>
    public async Task<(WebApplication App, GrpcChannel Channel)> StartTrainerAsync(Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?> { ["Trainer:RunsDirectory"] = RunsDirectory };
        foreach (var (key, value) in settings ?? [])
            all[key] = value;
        var app = await HostAsync(b => b.AddTrainerService(new TestConnector(TeacherChannel)), a => a.MapTrainerService(), all);
        return (app, Channel(app));
    }

    /// <summary>A controller whose service addresses map to the given in-memory channels.</summary>
    public async Task<GrpcChannel> StartControllerAsync(IReadOnlyDictionary<string, GrpcChannel> services)
    {
        var app = await HostAsync(b => Distill.Mesh.Controller.Extensions.ControllerServiceExtensions.AddControllerService(b, new MappedChannels(services)),
            a => Distill.Mesh.Controller.Extensions.ControllerServiceExtensions.MapControllerService(a), []);
        return Channel(app);
    }

    private sealed class MappedChannels(IReadOnlyDictionary<string, GrpcChannel> services) : Distill.Mesh.Controller.Runs.IServiceChannels
    {
        public global::Grpc.Core.CallInvoker For(string endpoint) =>
            services.TryGetValue(endpoint, out var channel) ? channel.CreateCallInvoker() : throw new KeyNotFoundException($"no service at {endpoint}");
    }

    public string Yaml(int steps) => $"""
        recipe: kd
        seed: 5
        student: {"{"} model: "{StudentFolder}" {"}"}
        teachers: [ {"{"} model: "{TeacherFolder}" {"}"} ]
        signal: {"{"} format: topk, k: 16, precision: fp32 {"}"}
        loss: {"{"} kind: fkl, kd_ratio: 0.8 {"}"}
        dataset: {"{"} path: "{DatasetPath}", max_length: 32, eval_fraction: 0 {"}"}
        training: {"{"} max_steps: {steps}, batch_size: 4, checkpoint_every: 2, optimizer: {"{"} lr: 3.0e-3 {"}"} {"}"}
        """;

    private async Task<WebApplication> HostAsync(Action<WebApplicationBuilder> add, Action<WebApplication> map, Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(settings);
        add(builder);
        var app = builder.Build();
        app.MapDefaultEndpoints();
        map(app);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await MeshHealth.WaitUntilReadyAsync(app.Services, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        _apps.Add(app);
        return app;
    }

    private static GrpcChannel Channel(WebApplication app) =>
        GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = app.GetTestServer().CreateHandler() });

    private sealed class TestConnector(GrpcChannel channel) : ITeacherConnector
    {
        public async Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken) =>
            await RemoteTeacher.ConnectAsync(channel.CreateCallInvoker(), cancellationToken: cancellationToken);
    }

    public async Task StopAsync(WebApplication app)
    {
        await app.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
        _apps.Remove(app);
        await app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps.AsEnumerable().Reverse().ToList())
            await StopAsync(app);
        Dir.Dispose();
    }
}
