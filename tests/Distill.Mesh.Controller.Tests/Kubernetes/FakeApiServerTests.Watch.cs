using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

public sealed partial class FakeApiServerTests
{
    [Fact]
    public async Task WatchListNamespacedPod_FromNow_AddedForExistingThenModifiedAndDeletedInOrder()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
        using var cts = new CancellationTokenSource(Timeout);
        await using var events = _client.CoreV1.WatchListNamespacedPodAsync(Ns, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);

        var added = await NextAsync(events);
        await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"labels":{"step":"1"}}}""", V1Patch.PatchType.MergePatch), "a", Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b"), Ns).WaitAsync(Timeout);
        await _client.CoreV1.DeleteNamespacedPodAsync("a", Ns).WaitAsync(Timeout);
        var rest = new[] { await NextAsync(events), await NextAsync(events), await NextAsync(events) };

        Assert.Equal((WatchEventType.Added, "a"), (added.Item1, added.Item2.Metadata.Name));
        Assert.Equal(
            [(WatchEventType.Modified, "a"), (WatchEventType.Added, "b"), (WatchEventType.Deleted, "a")],
            rest.Select(e => (e.Item1, e.Item2.Metadata.Name)));
        Assert.Equal("1", rest[0].Item2.Metadata.Labels["step"]);
        var versions = rest.Select(e => long.Parse(e.Item2.Metadata.ResourceVersion)).ToList();
        Assert.Equal(versions.Order(), versions);
    }

    [Fact]
    public async Task WatchListNamespacedPod_FromResourceVersion_ReplaysOnlyLaterEvents()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
        var listed = await _client.CoreV1.ListNamespacedPodAsync(Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b"), Ns).WaitAsync(Timeout);
        await _client.CoreV1.DeleteNamespacedPodAsync("a", Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("c"), "elsewhere").WaitAsync(Timeout);

        using var cts = new CancellationTokenSource(Timeout);
        await using var events = _client.CoreV1.WatchListNamespacedPodAsync(Ns, resourceVersion: listed.Metadata.ResourceVersion, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var replayed = new[] { await NextAsync(events), await NextAsync(events) };
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("d"), Ns).WaitAsync(Timeout);
        var live = await NextAsync(events);

        Assert.Equal(
            [(WatchEventType.Added, "b"), (WatchEventType.Deleted, "a"), (WatchEventType.Added, "d")],
            replayed.Append(live).Select(e => (e.Item1, e.Item2.Metadata.Name)));
    }

    [Fact]
    public async Task WatchListNamespacedPod_AfterExpireHistory_OnErrorGetsKubernetesException410AndStreamEnds()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
        var listed = await _client.CoreV1.ListNamespacedPodAsync(Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b"), Ns).WaitAsync(Timeout);
        _server.ExpireHistory();

        var errors = new List<Exception>();
        using var cts = new CancellationTokenSource(Timeout);
        var received = new List<(WatchEventType, V1Pod)>();
        await foreach (var e in _client.CoreV1.WatchListNamespacedPodAsync(Ns, resourceVersion: listed.Metadata.ResourceVersion, onError: errors.Add, cancellationToken: cts.Token))
            received.Add(e);

        // The client turns an ERROR event carrying a Status into onError(KubernetesException) and yields nothing for it.
        Assert.Empty(received);
        var gone = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, gone.Status.Code);
        Assert.Equal("Expired", gone.Status.Reason);
        Assert.False(cts.IsCancellationRequested);
    }

    [Fact]
    public async Task WatchListNamespacedPod_CurrentVersionAfterExpireHistory_StillWatches()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
        _server.ExpireHistory();
        var now = _server.ResourceVersion.ToString();

        using var cts = new CancellationTokenSource(Timeout);
        await using var events = _client.CoreV1.WatchListNamespacedPodAsync(Ns, resourceVersion: now, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var next = NextAsync(events);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b"), Ns).WaitAsync(Timeout);

        Assert.Equal((WatchEventType.Added, "b"), ((await next).Item1, (await next).Item2.Metadata.Name));
    }

    [Fact]
    public async Task WatchListNamespacedPod_TimeoutSeconds_ServerEndsTheStreamAfterTheEvents()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
        using var cts = new CancellationTokenSource(Timeout);
        var received = new List<(WatchEventType, string)>();
        await foreach (var (type, pod) in _client.CoreV1.WatchListNamespacedPodAsync(Ns, timeoutSeconds: 1, cancellationToken: cts.Token))
            received.Add((type, pod.Metadata.Name));

        Assert.Equal([(WatchEventType.Added, "a")], received);
        Assert.False(cts.IsCancellationRequested);
    }

    [Fact]
    public async Task WatchListNamespacedPod_TimeoutSecondsWithoutAnyEvent_ClientThrowsEndOfStream()
    {
        // The client's watch call waits for the first line before it returns, and a stream that ends without one
        // (a quiet watch that timed out, on a real server too) surfaces as HttpRequestException(EndOfStreamException).
        using var cts = new CancellationTokenSource(Timeout);
        var watch = _client.CoreV1.WatchListNamespacedPodAsync(Ns, timeoutSeconds: 1, cancellationToken: cts.Token);

        var e = await Assert.ThrowsAsync<HttpRequestException>(async () =>
        {
            await foreach (var _ in watch)
            {
            }
        });

        Assert.IsType<EndOfStreamException>(e.InnerException);
        Assert.False(cts.IsCancellationRequested);
    }

    [Fact]
    public async Task WatchListNamespacedPod_LabelSelector_ObjectLeavingTheSelectionArrivesAsDeleted()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a", ("role", "worker")), Ns).WaitAsync(Timeout);
        using var cts = new CancellationTokenSource(Timeout);
        await using var events = _client.CoreV1.WatchListNamespacedPodAsync(Ns, labelSelector: "role=worker", cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var added = await NextAsync(events);

        await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"labels":{"role":"idle"}}}""", V1Patch.PatchType.MergePatch), "a", Ns).WaitAsync(Timeout);
        var left = await NextAsync(events);
        await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"labels":{"role":"worker"}}}""", V1Patch.PatchType.MergePatch), "a", Ns).WaitAsync(Timeout);
        var back = await NextAsync(events);

        Assert.Equal([WatchEventType.Added, WatchEventType.Deleted, WatchEventType.Added], new[] { added.Item1, left.Item1, back.Item1 });
    }

    [Fact]
    public async Task Put_ServerSideWrite_ReachesClientWatchAndWaitFor()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("extract"), Ns).WaitAsync(Timeout);
        using var cts = new CancellationTokenSource(Timeout);
        await using var events = _client.BatchV1.WatchListNamespacedJobAsync(Ns, resourceVersion: job.Metadata.ResourceVersion, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var seen = new List<string>();
        _server.Changed += e => seen.Add($"{e.Type} {e.Resource.Plural} {e.Name}");

        var waiting = _server.WaitForAsync("batch", "v1", "jobs", Ns, "extract", j => j["status"]?["succeeded"]?.GetValue<int>() == 1, Timeout);
        var stored = _server.Get("batch", "v1", "jobs", Ns, "extract")!;
        stored["status"] = new System.Text.Json.Nodes.JsonObject { ["succeeded"] = 1 };
        _server.Put("batch", "v1", "jobs", stored);

        var modified = await NextAsync(events);
        Assert.Equal(WatchEventType.Modified, modified.Item1);
        Assert.Equal(1, modified.Item2.Status.Succeeded);
        Assert.Equal(1, modified.Item2.Metadata.Generation);
        Assert.Equal(1, (await waiting)["status"]!["succeeded"]!.GetValue<int>());
        Assert.Equal(["MODIFIED jobs extract"], seen);
    }

    private static async Task<(WatchEventType, T)> NextAsync<T>(IAsyncEnumerator<(WatchEventType, T)> events)
    {
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(Timeout), "the watch ended before the expected event");
        return events.Current;
    }
}
