using System.Collections.Concurrent;
using Distill.Mesh.Controller.Kubernetes.Reconciliation;
using Distill.Mesh.Testing.Kubernetes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

/// <summary>The operator's informer: list, watch from the list's version, resume quiet watches, relist after 410 Gone.</summary>
public class ListWatchTests
{
    private static V1ConfigMap Map(string name) => new() { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" } };

    private static Task WatchAsync(k8s.Kubernetes client, ConcurrentQueue<(WatchEventType, string)> seen, ConcurrentQueue<int> lists, CancellationToken cancellationToken, Action<int>? beforeWatch = null)
    {
        var watches = 0;
        return
        ListWatch.RunAsync<V1ConfigMap>("configmaps",
            async ct =>
            {
                var list = await client.CoreV1.ListNamespacedConfigMapAsync("default", cancellationToken: ct);
                lists.Enqueue(list.Items.Count);
                return (list.Items.ToList(), list.Metadata.ResourceVersion);
            },
            // Watches that end after a second, so that the test sees them resume.
            (rv, onError, ct) =>
            {
                beforeWatch?.Invoke(++watches);
                return client.CoreV1.WatchListNamespacedConfigMapAsync("default", resourceVersion: rv, timeoutSeconds: 1, onError: onError, cancellationToken: ct);
            },
            (type, map) => seen.Enqueue((type, map.Metadata.Name)), NullLogger.Instance, cancellationToken);
    }

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task QuietWatchesResume_FromTheLastVersion_WithoutListingAgain()
    {
        await using var server = await FakeApiServer.StartAsync();
        using var client = server.Client();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Map("before"), "default");
        var (seen, lists) = (new ConcurrentQueue<(WatchEventType, string)>(), new ConcurrentQueue<int>());
        using var stop = new CancellationTokenSource();
        var running = WatchAsync(client, seen, lists, stop.Token);

        await UntilAsync(() => seen.Count == 1, "the listed object");
        await Task.Delay(2500); // two quiet watches end and resume
        await client.CoreV1.CreateNamespacedConfigMapAsync(Map("after"), "default");
        await UntilAsync(() => seen.Count == 2, "the watched object");

        await stop.CancelAsync();
        await running;
        Assert.Equal([(WatchEventType.Added, "before"), (WatchEventType.Added, "after")], seen);
        Assert.Equal([1], lists);
    }

    [Fact]
    public async Task WatchFromAnExpiredVersion_ListsAgain_AndMissesNothing()
    {
        await using var server = await FakeApiServer.StartAsync();
        using var client = server.Client();
        await client.CoreV1.CreateNamespacedConfigMapAsync(Map("before"), "default");
        var (seen, lists) = (new ConcurrentQueue<(WatchEventType, string)>(), new ConcurrentQueue<int>());
        using var stop = new CancellationTokenSource();
        // While the first watch is away (it ended after its timeout), an object is created and history is compacted:
        // the second watch, from the old version, gets 410 Gone.
        var running = WatchAsync(client, seen, lists, stop.Token, watch =>
        {
            if (watch == 2)
            {
                server.Put("", "v1", "configmaps", System.Text.Json.Nodes.JsonNode.Parse("""{ "metadata": { "name": "while-away", "namespace": "default" } }""")!.AsObject());
                server.ExpireHistory();
            }
        });

        await UntilAsync(() => seen.Any(s => s.Item2 == "while-away"), "the object created while the watch was away");
        await stop.CancelAsync();
        await running;
        Assert.True(lists.Count >= 2, "the informer never listed again");
        Assert.Equal(2, lists.Last());
    }
}
