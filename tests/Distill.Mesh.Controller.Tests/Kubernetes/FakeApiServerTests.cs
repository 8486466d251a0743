using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Mesh.Testing.Kubernetes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

/// <summary>
/// The fake API server, exercised only through the unmodified KubernetesClient: CRUD and errors here; watches,
/// subresources and object lifecycle (finalizers, cascade, leader election, recording) in the other parts.
/// </summary>
public sealed partial class FakeApiServerTests : IAsyncLifetime
{
    private const string Ns = "distill";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private FakeApiServer _server = null!;
    private k8s.Kubernetes _client = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync().WaitAsync(Timeout);
        _server.RegisterCustomResource("distill.mesh.io", "v1alpha1", "distillationruns", "DistillationRun", statusSubresource: true);
        _client = _server.Client();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync().AsTask().WaitAsync(Timeout);
    }

    [Fact]
    public async Task CreateNamespacedPod_NewPod_ServerFillsMetadataAndReadListDeleteRoundTrip()
    {
        var created = await _client.CoreV1.CreateNamespacedPodAsync(Pod("trainer-0", ("app", "trainer")), Ns).WaitAsync(Timeout);

        Assert.Equal("Pod", created.Kind);
        Assert.Equal("v1", created.ApiVersion);
        Assert.Equal(Ns, created.Metadata.NamespaceProperty);
        Assert.True(Guid.TryParse(created.Metadata.Uid, out _));
        Assert.True(long.Parse(created.Metadata.ResourceVersion) > 0);
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.Equal(1, created.Metadata.Generation);

        var read = await _client.CoreV1.ReadNamespacedPodAsync("trainer-0", Ns).WaitAsync(Timeout);
        Assert.Equal(created.Metadata.Uid, read.Metadata.Uid);
        Assert.Equal("trainer", read.Spec.Containers.Single().Name);

        var list = await _client.CoreV1.ListNamespacedPodAsync(Ns).WaitAsync(Timeout);
        Assert.Equal(["trainer-0"], list.Items.Select(p => p.Metadata.Name));
        Assert.Equal(_server.ResourceVersion.ToString(), list.Metadata.ResourceVersion);

        var deleted = await _client.CoreV1.DeleteNamespacedPodAsync("trainer-0", Ns).WaitAsync(Timeout);
        Assert.Equal(created.Metadata.Uid, deleted.Metadata.Uid);
        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedPodAsync("trainer-0", Ns).WaitAsync(Timeout));
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
        Assert.Equal("NotFound", Status(missing).Reason);
        Assert.Null(_server.Get("", "v1", "pods", Ns, "trainer-0"));
    }

    [Fact]
    public async Task CreateNamespaced_EachBuiltInKind_ReadsBackThroughTypedClient()
    {
        var meta = () => new V1ObjectMeta { Name = "teacher" };
        await _client.CoreV1.CreateNamespacedServiceAsync(new V1Service { Metadata = meta(), Spec = new V1ServiceSpec { Ports = [new V1ServicePort { Port = 5000 }] } }, Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = meta(), StringData = new Dictionary<string, string> { ["token"] = "t" } }, Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = meta() }, Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPersistentVolumeClaimAsync(new V1PersistentVolumeClaim { Metadata = meta(), Spec = new V1PersistentVolumeClaimSpec { AccessModes = ["ReadWriteOnce"] } }, Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedEventAsync(new Corev1Event { Metadata = new V1ObjectMeta { Name = "teacher.1" }, InvolvedObject = new V1ObjectReference { Kind = "Pod", Name = "teacher" }, Reason = "Started" }, Ns).WaitAsync(Timeout);
        await _client.EventsV1.CreateNamespacedEventAsync(new Eventsv1Event { Metadata = new V1ObjectMeta { Name = "teacher.2" }, Reason = "Scaled", Action = "Scale", EventTime = DateTime.UtcNow }, Ns).WaitAsync(Timeout);
        await _client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease { Metadata = meta(), Spec = new V1LeaseSpec { HolderIdentity = "a" } }, Ns).WaitAsync(Timeout);

        Assert.Equal(5000, (await _client.CoreV1.ReadNamespacedServiceAsync("teacher", Ns).WaitAsync(Timeout)).Spec.Ports.Single().Port);
        Assert.Equal("t", (await _client.CoreV1.ReadNamespacedSecretAsync("teacher", Ns).WaitAsync(Timeout)).StringData["token"]);
        Assert.Equal("teacher", (await _client.CoreV1.ReadNamespacedServiceAccountAsync("teacher", Ns).WaitAsync(Timeout)).Metadata.Name);
        Assert.Equal(["ReadWriteOnce"], (await _client.CoreV1.ReadNamespacedPersistentVolumeClaimAsync("teacher", Ns).WaitAsync(Timeout)).Spec.AccessModes);
        Assert.Equal("Started", (await _client.CoreV1.ListNamespacedEventAsync(Ns).WaitAsync(Timeout)).Items.Single().Reason);
        Assert.Equal("Scaled", (await _client.EventsV1.ListNamespacedEventAsync(Ns).WaitAsync(Timeout)).Items.Single().Reason);
        Assert.Equal("a", (await _client.CoordinationV1.ReadNamespacedLeaseAsync("teacher", Ns).WaitAsync(Timeout)).Spec.HolderIdentity);
    }

    [Fact]
    public async Task CreateNamespacedPod_NameTaken_Conflict409AlreadyExists()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("trainer-0"), Ns).WaitAsync(Timeout);

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedPodAsync(Pod("trainer-0"), Ns).WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
        var status = Status(e);
        Assert.Equal("AlreadyExists", status.Reason);
        Assert.Equal(409, status.Code);
        Assert.Equal("Failure", status.Status);
    }

    [Fact]
    public async Task CreateNamespacedConfigMap_GenerateName_GetsUniqueGeneratedNames()
    {
        var template = new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "run-config-" }, Data = new Dictionary<string, string> { ["a"] = "1" } };

        var first = await _client.CoreV1.CreateNamespacedConfigMapAsync(template, Ns).WaitAsync(Timeout);
        var second = await _client.CoreV1.CreateNamespacedConfigMapAsync(template, Ns).WaitAsync(Timeout);

        Assert.StartsWith("run-config-", first.Metadata.Name);
        Assert.Equal("run-config-".Length + 5, first.Metadata.Name.Length);
        Assert.NotEqual(first.Metadata.Name, second.Metadata.Name);
    }

    [Fact]
    public async Task CreateNamespacedService_InvalidName_Unprocessable422()
    {
        var service = new V1Service { Metadata = new V1ObjectMeta { Name = "1-teacher.svc" }, Spec = new V1ServiceSpec() };

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedServiceAsync(service, Ns).WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        Assert.Equal("Invalid", Status(e).Reason);
    }

    [Fact]
    public async Task ReplaceNamespacedPod_StaleResourceVersion_Conflict409()
    {
        var created = await _client.CoreV1.CreateNamespacedPodAsync(Pod("trainer-0"), Ns).WaitAsync(Timeout);
        created.Metadata.Labels = new Dictionary<string, string> { ["step"] = "1" };
        var replaced = await _client.CoreV1.ReplaceNamespacedPodAsync(created, "trainer-0", Ns).WaitAsync(Timeout);
        Assert.NotEqual(created.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);

        created.Metadata.Labels["step"] = "2";
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedPodAsync(created, "trainer-0", Ns).WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
        Assert.Equal("Conflict", Status(e).Reason);
        Assert.Equal("1", (await _client.CoreV1.ReadNamespacedPodAsync("trainer-0", Ns).WaitAsync(Timeout)).Metadata.Labels["step"]);
    }

    [Fact]
    public async Task ReplaceNamespacedPod_Missing_NotFound404()
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedPodAsync(Pod("ghost"), "ghost", Ns).WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
    }

    [Fact]
    public async Task ReplaceNamespacedConfigMap_NothingChanged_KeepsResourceVersion()
    {
        var created = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "c" }, Data = new Dictionary<string, string> { ["a"] = "1" } }, Ns).WaitAsync(Timeout);

        var replaced = await _client.CoreV1.ReplaceNamespacedConfigMapAsync(created, "c", Ns).WaitAsync(Timeout);

        Assert.Equal(created.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);
        Assert.Equal(created.Metadata.ResourceVersion, _server.ResourceVersion.ToString());
    }

    [Theory]
    [InlineData("app=trainer", "a,b")]
    [InlineData("app==trainer,tier=gpu", "a")]
    [InlineData("app!=trainer", "c,d")]
    [InlineData("tier in (gpu,cpu)", "a,b")]
    [InlineData("tier notin (gpu)", "b,c,d")]
    [InlineData("tier", "a,b")]
    [InlineData("!tier", "c,d")]
    [InlineData("app in (teacher, trainer), !tier", "c")]
    public async Task ListNamespacedPod_LabelSelector_ReturnsOnlyMatchingPods(string selector, string expected)
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a", ("app", "trainer"), ("tier", "gpu")), Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b", ("app", "trainer"), ("tier", "cpu")), Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("c", ("app", "teacher")), Ns).WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("d"), Ns).WaitAsync(Timeout);

        var list = await _client.CoreV1.ListNamespacedPodAsync(Ns, labelSelector: selector).WaitAsync(Timeout);

        Assert.Equal(expected.Split(','), list.Items.Select(p => p.Metadata.Name));
    }

    [Fact]
    public async Task ListPodForAllNamespaces_FieldSelector_FiltersByNameAndNamespace()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "one").WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "two").WaitAsync(Timeout);
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b"), "two").WaitAsync(Timeout);

        var all = await _client.CoreV1.ListPodForAllNamespacesAsync().WaitAsync(Timeout);
        var named = await _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: "metadata.name=a").WaitAsync(Timeout);
        var inTwo = await _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: "metadata.namespace=two,metadata.name!=a").WaitAsync(Timeout);

        Assert.Equal(["one/a", "two/a", "two/b"], all.Items.Select(p => $"{p.Metadata.NamespaceProperty}/{p.Metadata.Name}"));
        Assert.Equal(["one/a", "two/a"], named.Items.Select(p => $"{p.Metadata.NamespaceProperty}/{p.Metadata.Name}"));
        Assert.Equal(["two/b"], inTwo.Items.Select(p => $"{p.Metadata.NamespaceProperty}/{p.Metadata.Name}"));
    }

    [Fact]
    public async Task ListNamespacedPod_BadLabelSelector_BadRequest400()
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ListNamespacedPodAsync(Ns, labelSelector: "a in (b").WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.BadRequest, e.Response.StatusCode);
    }

    [Fact]
    public async Task Discovery_CoreGroupsAndVersion_DescribeServedResources()
    {
        var core = await _client.CoreV1.GetAPIResourcesAsync().WaitAsync(Timeout);
        var groups = await _client.Apis.GetAPIVersionsAsync().WaitAsync(Timeout);
        var custom = await _client.CustomObjects.GetAPIResourcesAsync("distill.mesh.io", "v1alpha1").WaitAsync(Timeout);
        var apps = await _client.AppsV1.GetAPIResourcesAsync().WaitAsync(Timeout);
        var version = await _client.Version.GetCodeAsync().WaitAsync(Timeout);
        var versions = await _client.Core.GetAPIVersionsAsync().WaitAsync(Timeout);

        Assert.Contains(core.Resources, r => r is { Name: "pods", Kind: "Pod", Namespaced: true } && r.Verbs.Contains("watch"));
        Assert.Contains(core.Resources, r => r.Name == "pods/status");
        Assert.Contains(groups.Groups, g => g.Name == "distill.mesh.io" && g.PreferredVersion.GroupVersion == "distill.mesh.io/v1alpha1");
        Assert.Contains(groups.Groups, g => g.Name == "coordination.k8s.io");
        Assert.Contains(custom.Resources, r => r is { Name: "distillationruns/status" });
        Assert.Contains(apps.Resources, r => r is { Name: "deployments/scale", Kind: "Scale", Group: "autoscaling" });
        Assert.Equal("1", version.Major);
        Assert.Equal(["v1"], versions.Versions);
    }

    [Fact]
    public async Task FailNext_UpdateConflictThenServerError_FailsOnlyTheMatchingCalls()
    {
        var created = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "c" } }, Ns).WaitAsync(Timeout);
        _server.FailNext("update", "configmaps", HttpStatusCode.Conflict);
        _server.FailNext("get", "configmaps", HttpStatusCode.InternalServerError);
        created.Data = new Dictionary<string, string> { ["a"] = "1" };

        var conflict = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedConfigMapAsync(created, "c", Ns).WaitAsync(Timeout));
        var broken = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedConfigMapAsync("c", Ns).WaitAsync(Timeout));
        var replaced = await _client.CoreV1.ReplaceNamespacedConfigMapAsync(created, "c", Ns).WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.Conflict, conflict.Response.StatusCode);
        Assert.Equal(HttpStatusCode.InternalServerError, broken.Response.StatusCode);
        Assert.Equal("1", replaced.Data["a"]);
    }

    private static V1Pod Pod(string name, params (string Key, string Value)[] labels) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels.Length == 0 ? null : labels.ToDictionary(l => l.Key, l => l.Value) },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "trainer", Image = "distill/trainer:dev" }] },
    };

    private static V1Status Status(HttpOperationException e) =>
        KubernetesJson.Deserialize<V1Status>(e.Response.Content);

    private static JsonObject Json(object customObject) =>
        JsonNode.Parse(((JsonElement)customObject).GetRawText())!.AsObject();
}
