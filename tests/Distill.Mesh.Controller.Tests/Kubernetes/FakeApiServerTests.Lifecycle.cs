using System.Text.Json.Nodes;
using k8s;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

public sealed partial class FakeApiServerTests
{
    [Fact]
    public async Task DeleteNamespacedCustomObject_WithFinalizer_KeepsObjectWithDeletionTimestampUntilFinalizerRemoved()
    {
        var run = Run("run-1", "tiny");
        run["metadata"]!["finalizers"] = new JsonArray("distill.mesh.io/cleanup");
        var created = Json(await _client.CustomObjects.CreateNamespacedCustomObjectAsync(run, Group, Version, Ns, Runs).WaitAsync(Timeout));
        using var cts = new CancellationTokenSource(Timeout);
        await using var events = _client.CustomObjects.WatchListNamespacedCustomObjectAsync(Group, Version, Ns, Runs, resourceVersion: created["metadata"]!["resourceVersion"]!.GetValue<string>(), cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);

        var deleting = Json(await _client.CustomObjects.DeleteNamespacedCustomObjectAsync(Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout));
        var stillThere = Json(await _client.CustomObjects.GetNamespacedCustomObjectAsync(Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout));
        var marked = await NextAsync(events);
        await _client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout);
        var removed = await NextAsync(events);

        Assert.NotNull(deleting["metadata"]!["deletionTimestamp"]);
        Assert.NotNull(stillThere["metadata"]!["deletionTimestamp"]);
        Assert.Equal(WatchEventType.Modified, marked.Item1);
        Assert.NotNull(Json(marked.Item2)["metadata"]!["deletionTimestamp"]);
        Assert.Equal(WatchEventType.Deleted, removed.Item1);
        Assert.Null(_server.Get(Group, Version, Runs, Ns, "run-1"));
    }

    [Fact]
    public async Task DeleteNamespacedJob_PodsOwnedByJob_CascadeDeletesThePods()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("extract"), Ns).WaitAsync(Timeout);
        var owner = new V1OwnerReference { ApiVersion = "batch/v1", Kind = "Job", Name = "extract", Uid = job.Metadata.Uid, Controller = true, BlockOwnerDeletion = true };
        foreach (var name in new[] { "extract-0", "extract-1" })
        {
            var pod = Pod(name);
            pod.Metadata.OwnerReferences = [owner];
            await _client.CoreV1.CreateNamespacedPodAsync(pod, Ns).WaitAsync(Timeout);
        }

        await _client.CoreV1.CreateNamespacedPodAsync(Pod("bystander"), Ns).WaitAsync(Timeout);

        var status = await _client.BatchV1.DeleteNamespacedJobAsync("extract", Ns, propagationPolicy: "Background").WaitAsync(Timeout);
        await _server.WaitForAbsentAsync("", "v1", "pods", Ns, "extract-1", Timeout);

        Assert.Equal("Success", status.Status);
        Assert.Equal(["bystander"], (await _client.CoreV1.ListNamespacedPodAsync(Ns).WaitAsync(Timeout)).Items.Select(p => p.Metadata.Name));
    }

    [Fact]
    public async Task DeleteNamespacedJob_OrphanPolicy_KeepsPodsAndDropsTheirOwnerReference()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("extract"), Ns).WaitAsync(Timeout);
        var pod = Pod("extract-0");
        pod.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "batch/v1", Kind = "Job", Name = "extract", Uid = job.Metadata.Uid }];
        await _client.CoreV1.CreateNamespacedPodAsync(pod, Ns).WaitAsync(Timeout);

        await _client.BatchV1.DeleteNamespacedJobAsync("extract", Ns, propagationPolicy: "Orphan").WaitAsync(Timeout);

        var kept = await _client.CoreV1.ReadNamespacedPodAsync("extract-0", Ns).WaitAsync(Timeout);
        Assert.Empty(kept.Metadata.OwnerReferences ?? []);
    }

    [Fact]
    public async Task DeleteNamespacedJob_NoPropagationPolicy_OrphansPodsAsBatchV1Does()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("extract"), Ns).WaitAsync(Timeout);
        var pod = Pod("extract-0");
        pod.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "batch/v1", Kind = "Job", Name = "extract", Uid = job.Metadata.Uid }];
        await _client.CoreV1.CreateNamespacedPodAsync(pod, Ns).WaitAsync(Timeout);

        await _client.BatchV1.DeleteNamespacedJobAsync("extract", Ns).WaitAsync(Timeout);

        Assert.Equal(["extract-0"], (await _client.CoreV1.ListNamespacedPodAsync(Ns).WaitAsync(Timeout)).Items.Select(p => p.Metadata.Name));
    }

    [Fact]
    public async Task DeleteNamespacedDeployment_OwnerOfOwner_CascadesThroughEveryLevel()
    {
        var deployment = await _client.AppsV1.CreateNamespacedDeploymentAsync(Deployment("teacher"), Ns).WaitAsync(Timeout);
        var config = new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "teacher-config", OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = "teacher", Uid = deployment.Metadata.Uid }] } };
        var createdConfig = await _client.CoreV1.CreateNamespacedConfigMapAsync(config, Ns).WaitAsync(Timeout);
        var secret = new V1Secret { Metadata = new V1ObjectMeta { Name = "teacher-secret", OwnerReferences = [new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "teacher-config", Uid = createdConfig.Metadata.Uid }] } };
        await _client.CoreV1.CreateNamespacedSecretAsync(secret, Ns).WaitAsync(Timeout);

        await _client.AppsV1.DeleteNamespacedDeploymentAsync("teacher", Ns).WaitAsync(Timeout);

        await _server.WaitForAbsentAsync("", "v1", "secrets", Ns, "teacher-secret", Timeout);
        Assert.Null(_server.Get("", "v1", "configmaps", Ns, "teacher-config"));
    }

    [Fact]
    public async Task PatchNamespacedCustomObject_NewFinalizerWhileDeleting_Invalid422()
    {
        var run = Run("run-1", "tiny");
        run["metadata"]!["finalizers"] = new JsonArray("distill.mesh.io/cleanup");
        await _client.CustomObjects.CreateNamespacedCustomObjectAsync(run, Group, Version, Ns, Runs).WaitAsync(Timeout);
        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync(Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout);

        var e = await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => _client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch("""{"metadata":{"finalizers":["distill.mesh.io/cleanup","other"]}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout));

        Assert.Equal(System.Net.HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
    }

    [Fact]
    public async Task GenericClientAndCustomObjects_CoreGroup_ServePods()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
        using var pods = new GenericClient(_client, "v1", "pods", disposeClient: false);

        var pod = await pods.ReadNamespacedAsync<V1Pod>(Ns, "a").WaitAsync(Timeout);
        // CustomObjects with group "" asks for /apis//v1/...; the fake serves it as the core group.
        var untyped = Json(await _client.CustomObjects.GetNamespacedCustomObjectAsync("", "v1", Ns, "pods", "a").WaitAsync(Timeout));

        Assert.Equal("a", pod.Metadata.Name);
        Assert.Equal(pod.Metadata.Uid, untyped["metadata"]!["uid"]!.GetValue<string>());
    }

    [Fact]
    public async Task LeaderElector_TwoCandidatesOnOneLease_OneLeadsAndTheOtherTakesOverAfterExpiry()
    {
        using var clientA = _server.Client();
        using var clientB = _server.Client();
        LeaderElector Elector(IKubernetes client, string identity) => new(new LeaderElectionConfig(new LeaseLock(client, Ns, "distill-controller", identity))
        {
            LeaseDuration = TimeSpan.FromSeconds(2),
            RenewDeadline = TimeSpan.FromSeconds(1),
            RetryPeriod = TimeSpan.FromMilliseconds(200),
        });
        using var a = Elector(clientA, "a");
        using var b = Elector(clientB, "b");
        var ledA = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ledB = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        a.OnStartedLeading += () => ledA.TrySetResult();
        b.OnStartedLeading += () => ledB.TrySetResult();
        using var stopA = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stopB = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var runA = Observe(a.RunAndTryToHoldLeadershipForeverAsync(stopA.Token));
        var runB = Observe(b.RunAndTryToHoldLeadershipForeverAsync(stopB.Token));

        var first = await Task.WhenAny(ledA.Task, ledB.Task).WaitAsync(Timeout);
        var (leader, follower, stopLeader, followerLed, followerName) = first == ledA.Task ? (a, b, stopA, ledB, "b") : (b, a, stopB, ledA, "a");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.True(leader.IsLeader());
        Assert.False(follower.IsLeader());
        Assert.False(followerLed.Task.IsCompleted);

        await stopLeader.CancelAsync();
        await followerLed.Task.WaitAsync(Timeout);

        Assert.True(follower.IsLeader());
        var lease = _server.Get("coordination.k8s.io", "v1", "leases", Ns, "distill-controller")!;
        Assert.Equal(followerName, lease["spec"]!["holderIdentity"]!.GetValue<string>());
        await stopA.CancelAsync();
        await stopB.CancelAsync();
        await Task.WhenAll(runA, runB).WaitAsync(Timeout);
    }

    [Fact]
    public async Task Calls_OperatorStyleTraffic_RecordsRbacVerbsWithGroupsAndSubresources()
    {
        using var cts = new CancellationTokenSource(Timeout);
        await using (var pods = _client.CoreV1.WatchListNamespacedPodAsync(Ns, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token))
        {
            await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
            await NextAsync(pods);
        }

        await _client.CustomObjects.CreateNamespacedCustomObjectAsync(Run("run-1", "tiny"), Group, Version, Ns, Runs).WaitAsync(Timeout);
        await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(new V1Patch("""{"status":{"phase":"Training"}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout);
        await _client.CustomObjects.ListClusterCustomObjectAsync(Group, Version, Runs).WaitAsync(Timeout);
        await _client.AppsV1.CreateNamespacedDeploymentAsync(Deployment("teacher"), Ns).WaitAsync(Timeout);
        await _client.AppsV1.PatchNamespacedDeploymentScaleAsync(new V1Patch("""{"spec":{"replicas":0}}""", V1Patch.PatchType.MergePatch), "teacher", Ns).WaitAsync(Timeout);
        await _client.CoreV1.DeleteCollectionNamespacedPodAsync(Ns).WaitAsync(Timeout);

        Assert.Contains(new ApiCallShape("watch", "", "pods", null), Shapes());
        Assert.Contains(new ApiCallShape("create", "", "pods", null), Shapes());
        Assert.Contains(new ApiCallShape("patch", Group, Runs, "status"), Shapes());
        Assert.Contains(new ApiCallShape("list", Group, Runs, null), Shapes());
        Assert.Contains(new ApiCallShape("patch", "apps", "deployments", "scale"), Shapes());
        Assert.Contains(new ApiCallShape("deletecollection", "", "pods", null), Shapes());
        Assert.Contains(("patch", Group, "distillationruns/status"), _server.Permissions());
        Assert.DoesNotContain(("update", Group, "distillationruns"), _server.Permissions());
        Assert.Contains(_server.Calls, c => c is { Verb: "list", Namespace: null, Resource: Runs });
    }

    private IEnumerable<ApiCallShape> Shapes() => _server.Calls.Select(c => new ApiCallShape(c.Verb, c.Group, c.Resource, c.Subresource));

    private static async Task Observe(Task run)
    {
        try
        {
            await run;
        }
        catch (OperationCanceledException)
        {
            // The elector ends by cancellation.
        }
    }

    private sealed record ApiCallShape(string Verb, string Group, string Resource, string? Subresource);
}
