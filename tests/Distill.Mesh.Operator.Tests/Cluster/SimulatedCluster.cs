using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Testing;
using Distill.Mesh.Testing.Kubernetes;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests.Cluster;

/// <summary>
/// A Kubernetes cluster for operator tests: the fake API server (with the DistillationRun CRD
/// installed) and, playing the cluster's own components on it, a scheduler, the Job and Deployment
/// controllers and a kubelet that runs pods in process, in one loop every few milliseconds.
/// Persistent volume claims are host folders; Services resolve to Ready pods on the cluster network.
/// </summary>
internal sealed class SimulatedCluster : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    private SimulatedCluster(FakeApiServer api)
    {
        Api = api;
        Scheduler = new Scheduler(api);
        Jobs = new JobController(api);
        Deployments = new DeploymentController(api);
        Kubelet = new Kubelet(api, Claim, Dir.Combine("pods"));
        Network = new ClusterNetwork(ServiceHandler);
    }

    public FakeApiServer Api { get; }

    public TempFolder Dir { get; } = new();

    public Scheduler Scheduler { get; }

    public JobController Jobs { get; }

    public DeploymentController Deployments { get; }

    public Kubelet Kubelet { get; }

    public ClusterNetwork Network { get; }

    /// <summary>What went wrong inside the simulation (a failing test's message).</summary>
    public ConcurrentQueue<string> Errors { get; } = new();

    public static async Task<SimulatedCluster> StartAsync()
    {
        var api = await FakeApiServer.StartAsync();
        api.RegisterCustomResource(DistillationRun.Group, DistillationRun.Version, DistillationRun.Plural, DistillationRun.KindName, statusSubresource: true);
        var cluster = new SimulatedCluster(api);
        cluster._loop = Task.Run(() => cluster.LoopAsync(cluster._stop.Token));
        return cluster;
    }

    /// <summary>The host folder behind a persistent volume claim.</summary>
    public string Claim(string name)
    {
        var folder = Dir.Combine("claims", name);
        Directory.CreateDirectory(folder);
        return folder;
    }

    public IReadOnlyList<V1Pod> Pods(string? labelKey = null, string? labelValue = null) =>
        Api.List("", "v1", "pods").Select(Objects.Typed<V1Pod>)
            .Where(p => labelKey is null || (p.Metadata.Labels?.TryGetValue(labelKey, out var value) == true && (labelValue is null || value == labelValue))).ToList();

    public IReadOnlyList<V1Job> JobsOf(string run) =>
        Api.List("batch", "v1", "jobs").Select(Objects.Typed<V1Job>).Where(j => j.Metadata.Labels?.TryGetValue("distill.mesh.io/run", out var owner) == true && owner == run).ToList();

    public DistillationRun? Run(string name, string ns = "default") =>
        Api.Get(DistillationRun.Group, DistillationRun.Version, DistillationRun.Plural, ns, name) is { } run ? Objects.Typed<DistillationRun>(run) : null;

    /// <summary>Evicts a pod as the eviction API (or a preemption) does: DisruptionTarget=True, then deleted.</summary>
    public void Evict(V1Pod pod)
    {
        Api.Patch("", "v1", "pods", pod.Metadata.NamespaceProperty, pod.Metadata.Name, new JsonObject
        {
            ["status"] = new JsonObject
            {
                ["conditions"] = new JsonArray((pod.Status?.Conditions ?? []).Select(c => (JsonNode)Objects.Node(c))
                    .Append(new JsonObject { ["type"] = "DisruptionTarget", ["status"] = "True", ["reason"] = "EvictionByEvictionAPI", ["message"] = "Eviction API: evicting", ["lastTransitionTime"] = Objects.Now() }).ToArray()),
            },
        });
        Api.Delete("", "v1", "pods", pod.Metadata.NamespaceProperty, pod.Metadata.Name);
    }

    /// <summary>Waits until <paramref name="condition"/> holds, checking often; the message names what was last seen.</summary>
    public async Task<T> EventuallyAsync<T>(Func<T?> probe, Func<T, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        T? last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = probe();
            if (last is not null && condition(last))
                return last;
            await Task.Delay(50);
        }

        throw new TimeoutException($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}; last seen: {Describe(last)}\nsimulation errors: {string.Join("\n", Errors.TakeLast(10))}\n{Kubelet.Logs()}");
    }

    private static string Describe(object? value) => value switch
    {
        null => "nothing",
        DistillationRun run => k8s.KubernetesJson.Serialize(run.Status),
        _ => k8s.KubernetesJson.Serialize(value),
    };

    private HttpMessageHandler? ServiceHandler(string ns, string name)
    {
        if (Api.Get("", "v1", "services", ns, name) is not { } service)
            return null;
        var selector = Objects.Typed<V1Service>(service).Spec.Selector;
        return Pods().Where(p => p.Metadata.NamespaceProperty == ns && Objects.Matches(selector, p.Metadata.Labels) && Objects.Ready(p) && !Objects.Deleting(p))
            .Select(p => Kubelet.HandlerOf(p.Metadata.Uid)).FirstOrDefault(h => h is not null);
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        var parts = new (string Name, Action<IReadOnlyList<V1Pod>> Pass)[] { ("scheduler", Scheduler.Pass), ("job controller", Jobs.Pass), ("deployment controller", Deployments.Pass), ("kubelet", Kubelet.Pass) };
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var (name, pass) in parts)
            {
                try
                {
                    pass(Pods());
                }
                catch (Exception e)
                {
                    // A write that raced another (an object deleted meanwhile) is retried on the next pass.
                    Errors.Enqueue($"{name}: {e.GetType().Name}: {e.Message}");
                    while (Errors.Count > 100)
                        Errors.TryDequeue(out _);
                }
            }

            try
            {
                await Task.Delay(40, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        await Kubelet.StopAllAsync();
        await Api.DisposeAsync();
        _stop.Dispose();
        Dir.Dispose();
    }
}
