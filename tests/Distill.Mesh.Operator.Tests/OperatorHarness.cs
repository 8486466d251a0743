using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Extensions;
using Distill.Mesh.Controller.Kubernetes;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Specs.Runs;
using Distill.Mesh.Operator.Tests.Cluster;
using Distill.Mesh.Registry.Extensions;
using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Testing;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Distill.Mesh.Operator.Tests;

/// <summary>A controller replica on the simulated cluster: its runs API and its operator.</summary>
internal sealed record ControllerReplica(string Identity, WebApplication App, GrpcChannel Channel)
{
    public RunsService.RunsServiceClient Runs => new(Channel);

    public KubernetesOperator Operator => App.Services.GetRequiredService<KubernetesOperator>();

    public OperatorMetrics Metrics => App.Services.GetRequiredService<OperatorMetrics>();
}

/// <summary>
/// The simulated cluster with what a run needs around it: tiny teacher and student models and a
/// dataset on the host, a registry at the controller's default registry address, optionally Redis
/// for teacher caches, and controller replicas whose runs API and progress sink the tests call.
/// </summary>
internal sealed class OperatorHarness : IAsyncDisposable
{
    public const string ControllerAddress = "http://distill-controller:7104";
    public const string RegistryAddress = "http://distill-registry:7103";

    private readonly List<WebApplication> _apps = [];

    private OperatorHarness(SimulatedCluster cluster) => Cluster = cluster;

    public SimulatedCluster Cluster { get; }

    public RedisServer? Redis { get; private set; }

    public GrpcChannel Registry { get; private set; } = null!;

    public List<ControllerReplica> Replicas { get; } = [];

    public string TeacherFolder => Cluster.Dir.Combine("models", "teacher");

    public string StudentFolder => Cluster.Dir.Combine("models", "student");

    public string DatasetPath => Cluster.Dir.Combine("models", "data.jsonl");

    /// <summary>The scripted containers pods run when the harness does not run the real services.</summary>
    public ScriptedPods Scripts { get; } = new();

    /// <param name="realPods">Run pods as the real services (else as <see cref="Scripts"/>).</param>
    /// <param name="redis">Start Redis for the teacher cache (precompute needs it).</param>
    public static async Task<OperatorHarness> StartAsync(bool realPods, bool redis = false)
    {
        var harness = new OperatorHarness(await SimulatedCluster.StartAsync());
        harness.Cluster.Kubelet.Runner = realPods ? new ServicePods(harness.Cluster.Network).RunAsync : harness.Scripts.RunAsync;
        if (redis)
            harness.Redis = new RedisServer();
        Directory.CreateDirectory(harness.Cluster.Dir.Combine("models"));
        using (var teacher = TinyModels.Create("llama", 31))
            TinyModels.SaveWithByteTokenizer(teacher, harness.TeacherFolder);
        using (var student = TinyModels.Create("qwen2", 32))
            TinyModels.SaveWithByteTokenizer(student, harness.StudentFolder);
        File.WriteAllLines(harness.DatasetPath, Enumerable.Range(0, 24).Select(i => $"{{\"text\": \"line {i} holds {new string((char)('a' + i % 26), i % 5 + 2)}\"}}"));
        var registry = await harness.HostAsync(b => b.AddRegistryService(), a => a.MapRegistryService(), new() { ["Registry:Root"] = harness.Cluster.Dir.Combine("registry") });
        harness.Registry = Channel(registry);
        harness.Cluster.Network.Add(RegistryAddress, registry.GetTestServer().CreateHandler());
        return harness;
    }

    /// <summary>A controller replica with the Kubernetes backend on the cluster; the first one started is the Service's endpoint for progress reports.</summary>
    public async Task<ControllerReplica> StartControllerAsync(string identity = "controller-0", Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["Controller:Backend"] = "kubernetes",
            ["Controller:Kubernetes:ApiServer"] = Cluster.Api.Address.ToString(),
            ["Controller:Kubernetes:Namespace"] = "default",
            ["Controller:Kubernetes:Identity"] = identity,
            ["Controller:Kubernetes:ReportTo"] = ControllerAddress,
            ["Controller:Kubernetes:Registry"] = RegistryAddress,
            ["Controller:Kubernetes:TeacherDevice"] = "cpu",
            ["Controller:Kubernetes:LeaseDuration"] = "00:00:03",
            ["Controller:Kubernetes:RenewDeadline"] = "00:00:02",
            ["Controller:Kubernetes:RetryPeriod"] = "00:00:00.250",
            ["Controller:Kubernetes:Resync"] = "00:00:05",
        };
        if (Redis is not null)
            all["Controller:Kubernetes:Redis"] = Redis.RelaxedConnectionString;
        foreach (var (key, value) in settings ?? [])
            all[key] = value;
        var app = await HostAsync(b => b.AddControllerService(), a => a.MapControllerService(), all);
        var replica = new ControllerReplica(identity, app, Channel(app));
        if (Replicas.Count == 0)
            Cluster.Network.Add(ControllerAddress, app.GetTestServer().CreateHandler());
        Replicas.Add(replica);
        return replica;
    }

    /// <summary>Stops a replica (its host stops; the lease it held expires on its own, as a killed pod's does).</summary>
    public async Task StopAsync(ControllerReplica replica)
    {
        Replicas.Remove(replica);
        _apps.Remove(replica.App);
        await replica.App.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await replica.App.DisposeAsync();
    }

    /// <summary>A run spec for the runs API over the harness's models and dataset.</summary>
    public string Spec(int steps, string stages, string recipe = "kd", string extra = "", double evalFraction = 0, int checkpointEvery = 2) => $$"""
        recipe: {{recipe}}
        seed: 5
        student: { model: "{{StudentFolder}}" }
        {{(recipe == "sft" ? "" : $"teachers: [ {{ model: \"{TeacherFolder}\" }} ]\nsignal: {{ format: topk, k: 16, precision: fp32 }}\nloss: {{ kind: fkl, kd_ratio: 0.8 }}")}}
        dataset: { path: "{{DatasetPath}}", max_length: 32, eval_fraction: {{evalFraction.ToString(System.Globalization.CultureInfo.InvariantCulture)}} }
        training: { max_steps: {{steps}}, batch_size: 4, checkpoint_every: {{checkpointEvery}}, log_every: 1, optimizer: { lr: 3.0e-3 } }
        stages: {{stages}}
        {{extra}}
        """;

    /// <summary>Creates a DistillationRun as `kubectl apply` would: the run spec from YAML, the rest as <paramref name="configure"/> sets it.</summary>
    public DistillationRun CreateRun(string name, string specYaml, Action<DistillationRunSpec>? configure = null)
    {
        var canonical = (System.Text.Json.Nodes.JsonObject)RunSpecLoader.Parse(specYaml, [], folder: null, "spec").Canonical.DeepClone();
        canonical.Remove("output_dir");
        var run = new DistillationRun { Metadata = new k8s.Models.V1ObjectMeta { Name = name, NamespaceProperty = "default" }, Spec = new DistillationRunSpec { Run = canonical } };
        configure?.Invoke(run.Spec);
        var created = Cluster.Api.Put(DistillationRun.Group, DistillationRun.Version, DistillationRun.Plural, Objects.Node(run));
        return Objects.Typed<DistillationRun>(created);
    }

    /// <summary>The run once <paramref name="condition"/> holds for it.</summary>
    public Task<DistillationRun> RunAsync(string name, Func<DistillationRun, bool> condition, TimeSpan timeout, string what) =>
        Cluster.EventuallyAsync(() => Cluster.Run(name), condition, timeout, $"run {name}: {what}");

    private async Task<WebApplication> HostAsync(Action<WebApplicationBuilder> add, Action<WebApplication> map, Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = Cluster.Dir.Path });
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

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps.AsEnumerable().Reverse().ToList())
        {
            await app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await app.DisposeAsync();
        }

        await Cluster.DisposeAsync();
        Redis?.Dispose();
    }
}
