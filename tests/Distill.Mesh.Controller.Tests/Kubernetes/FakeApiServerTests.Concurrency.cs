using System.Net;
using System.Text.Json.Nodes;
using Distill.Mesh.Testing.Kubernetes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

public sealed partial class FakeApiServerTests
{
    [Fact]
    public async Task ReplaceNamespacedConfigMap_ConcurrentReadModifyWriteWithRetryOn409_LosesNoIncrement()
    {
        await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "counter" }, Data = new Dictionary<string, string> { ["n"] = "0" } }, Ns).WaitAsync(Timeout);

        async Task IncrementAsync(k8s.Kubernetes client)
        {
            for (var i = 0; i < 10; i++)
            {
                while (true)
                {
                    var current = await client.CoreV1.ReadNamespacedConfigMapAsync("counter", Ns).WaitAsync(Timeout);
                    current.Data["n"] = (int.Parse(current.Data["n"]) + 1).ToString();
                    try
                    {
                        await client.CoreV1.ReplaceNamespacedConfigMapAsync(current, "counter", Ns).WaitAsync(Timeout);
                        break;
                    }
                    catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
                    {
                        // Another client won the race: read again and retry, as a reconcile would.
                    }
                }
            }
        }

        var clients = Enumerable.Range(0, 6).Select(_ => _server.Client()).ToList();
        await Task.WhenAll(clients.Select(IncrementAsync)).WaitAsync(TimeSpan.FromSeconds(60));
        clients.ForEach(c => c.Dispose());

        Assert.Equal("60", (await _client.CoreV1.ReadNamespacedConfigMapAsync("counter", Ns).WaitAsync(Timeout)).Data["n"]);
    }

    [Fact]
    public async Task WatchListNamespacedConfigMap_ConcurrentCreatesFromManyClients_EveryEventOnceInResourceVersionOrder()
    {
        var start = _server.ResourceVersion.ToString();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var clients = Enumerable.Range(0, 8).Select(_ => _server.Client()).ToList();
        await Task.WhenAll(clients.Select((client, c) => Task.Run(async () =>
        {
            for (var i = 0; i < 25; i++)
                await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = $"c{c}-{i}" } }, Ns).WaitAsync(Timeout);
        }))).WaitAsync(TimeSpan.FromSeconds(60));
        clients.ForEach(c => c.Dispose());

        var versions = new List<long>();
        await using var events = _client.CoreV1.WatchListNamespacedConfigMapAsync(Ns, resourceVersion: start, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var names = new HashSet<string>();
        for (var i = 0; i < 200; i++)
        {
            var (type, map) = await NextAsync(events);
            Assert.Equal(WatchEventType.Added, type);
            Assert.True(names.Add(map.Metadata.Name));
            versions.Add(long.Parse(map.Metadata.ResourceVersion));
        }

        Assert.Equal(versions.Order(), versions);
        Assert.Equal(200, _server.List("", "v1", "configmaps", Ns).Count);
    }

    [Fact]
    public async Task WatchListNamespacedConfigMap_ResourceVersionOlderThanHistoryLimit_Expired410()
    {
        _server.Put("", "v1", "configmaps", new JsonObject { ["metadata"] = new JsonObject { ["name"] = "first", ["namespace"] = Ns } });
        var early = _server.ResourceVersion.ToString();
        for (var i = 0; i < 1_001; i++)
            _server.Put("", "v1", "configmaps", new JsonObject { ["metadata"] = new JsonObject { ["name"] = $"c{i}", ["namespace"] = Ns } });

        var errors = new List<Exception>();
        using var cts = new CancellationTokenSource(Timeout);
        await foreach (var _ in _client.CoreV1.WatchListNamespacedConfigMapAsync(Ns, resourceVersion: early, onError: errors.Add, cancellationToken: cts.Token))
            Assert.Fail("an expired watch delivers no events");

        Assert.Equal(410, Assert.IsType<KubernetesException>(Assert.Single(errors)).Status.Code);
    }

    [Fact]
    public async Task DisposeAsync_WatchOpen_EndsTheClientStream()
    {
        var server = await FakeApiServer.StartAsync().WaitAsync(Timeout);
        using var client = server.Client();
        server.Put("", "v1", "configmaps", new JsonObject { ["metadata"] = new JsonObject { ["name"] = "c", ["namespace"] = Ns } });
        using var cts = new CancellationTokenSource(Timeout);
        await using var events = client.CoreV1.WatchListNamespacedConfigMapAsync(Ns, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        await NextAsync(events);

        await server.DisposeAsync().AsTask().WaitAsync(Timeout);

        Assert.False(await events.MoveNextAsync().AsTask().WaitAsync(Timeout));
        Assert.False(cts.IsCancellationRequested);
    }

    [Fact]
    public async Task PatchNamespacedConfigMap_ServerSideApply_CreatesThenMerges()
    {
        var created = await _client.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"a":"1"}}""", V1Patch.PatchType.ApplyPatch), "applied", Ns, fieldManager: "distill").WaitAsync(Timeout);
        var merged = await _client.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"b":"2"}}""", V1Patch.PatchType.ApplyPatch), "applied", Ns, fieldManager: "distill").WaitAsync(Timeout);

        Assert.Equal("1", created.Data["a"]);
        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" }, merged.Data);
    }
}
