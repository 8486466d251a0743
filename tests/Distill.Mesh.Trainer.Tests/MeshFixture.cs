using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Clients.Teacher;
using Distill.Mesh.Teacher.Extensions;
using Distill.Mesh.Testing;
using Distill.Mesh.Trainer.Extensions;
using Distill.Mesh.Registry.Extensions;
using Microsoft.Extensions.DependencyInjection;
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

    /// <summary>Teacher services by the address runs name them with (http://teacher is the fixture's own).</summary>
    public Dictionary<string, GrpcChannel> Teachers { get; } = new(StringComparer.Ordinal);

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
        fixture.Teachers["http://teacher"] = fixture.TeacherChannel;
        return fixture;
    }

    /// <summary>Another teacher service, reached by runs at <paramref name="address"/>.</summary>
    public async Task StartTeacherAsync(string address, string folder)
    {
        var app = await HostAsync(b => b.AddTeacherService(), a => a.MapTeacherService(), new() { ["Teacher:Model"] = folder });
        Teachers[address] = Channel(app);
    }

    /// <summary>In-memory services the trainer reaches by address (a registry at http://registry).</summary>
    public Dictionary<string, HttpMessageHandler> Services { get; } = new(StringComparer.Ordinal);

    /// <summary>A registry at http://registry (its folder under the fixture's).</summary>
    public async Task<GrpcChannel> StartRegistryAsync()
    {
        var app = await HostAsync(b => b.AddRegistryService(), a => a.MapRegistryService(), new() { ["Registry:Root"] = Dir.Combine("registry") });
        Services["http://registry"] = app.GetTestServer().CreateHandler();
        return Channel(app);
    }

    /// <summary>A trainer on the fixture's runs volume; its runs reach the fixture's teachers and services.</summary>
    public async Task<(WebApplication App, GrpcChannel Channel)> StartTrainerAsync(Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?> { ["Trainer:RunsDirectory"] = RunsDirectory };
        foreach (var (key, value) in settings ?? [])
            all[key] = value;
        var app = await HostAsync(b =>
        {
            b.AddTrainerService(new TestConnector(Teachers));
            b.Services.AddSingleton(sp => new MeshChannels(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeshOptions>>(), Services));
        }, a => a.MapTrainerService(), all);
        return (app, Channel(app));
    }

    public string ControllerDirectory => Dir.Combine("controller");

    /// <summary>A trainer that accepts every call and never answers.</summary>
    public async Task<GrpcChannel> StartSilentTrainerAsync()
    {
        var app = await HostAsync(b => b.AddServiceDefaults("silent-trainer"), a => a.MapGrpcService<SilentTrainer>(), []);
        return Channel(app);
    }

    private sealed class SilentTrainer : Contracts.Trainer.V1.TrainerService.TrainerServiceBase
    {
        public override async Task<Contracts.Trainer.V1.RunInfo> Start(Contracts.Trainer.V1.StartRequest request, global::Grpc.Core.ServerCallContext context)
        {
            await Task.Delay(System.Threading.Timeout.Infinite, context.CancellationToken);
            return new Contracts.Trainer.V1.RunInfo();
        }
    }

    /// <summary>A controller (its run records in <see cref="ControllerDirectory"/>) whose service addresses map to the given in-memory channels.</summary>
    public async Task<(WebApplication App, GrpcChannel Channel)> StartControllerAppAsync(IReadOnlyDictionary<string, GrpcChannel> services, Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?> { ["Controller:RunsDirectory"] = ControllerDirectory, ["Controller:Trainer"] = "http://trainer" };
        foreach (var (key, value) in settings ?? [])
            all[key] = value;
        var app = await HostAsync(b => Distill.Mesh.Controller.Extensions.ControllerServiceExtensions.AddControllerService(b, new MappedChannels(services)),
            a => Distill.Mesh.Controller.Extensions.ControllerServiceExtensions.MapControllerService(a), all);
        return (app, Channel(app));
    }

    /// <inheritdoc cref="StartControllerAppAsync"/>
    public async Task<GrpcChannel> StartControllerAsync(IReadOnlyDictionary<string, GrpcChannel> services, Dictionary<string, string?>? settings = null) =>
        (await StartControllerAppAsync(services, settings)).Channel;

    private sealed class MappedChannels(IReadOnlyDictionary<string, GrpcChannel> services) : Distill.Mesh.Controller.Runs.IServiceChannels
    {
        public global::Grpc.Core.CallInvoker For(string endpoint) =>
            services.TryGetValue(endpoint, out var channel) ? channel.CreateCallInvoker()
            : throw new global::Grpc.Core.RpcException(new global::Grpc.Core.Status(global::Grpc.Core.StatusCode.Unavailable, $"no service listens at {endpoint}"));
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

    private sealed class TestConnector(Dictionary<string, GrpcChannel> teachers) : ITeacherConnector
    {
        public async Task<ITeacherSignal> ConnectAsync(string endpoint, CancellationToken cancellationToken) =>
            await RemoteTeacher.ConnectAsync((teachers.TryGetValue(endpoint, out var channel) ? channel : throw new KeyNotFoundException($"no teacher service at {endpoint}")).CreateCallInvoker(), cancellationToken: cancellationToken);
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
