using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Distill.Mesh.Controller.Tests.Kubernetes;

public sealed partial class FakeApiServerTests
{
    private const string Group = "distill.mesh.io";
    private const string Version = "v1alpha1";
    private const string Runs = "distillationruns";

    [Fact]
    public async Task PatchNamespacedDeployment_MergePatch_ChangesSpecAndBumpsGeneration()
    {
        var created = await _client.AppsV1.CreateNamespacedDeploymentAsync(Deployment("teacher", replicas: null), Ns).WaitAsync(Timeout);
        Assert.Equal(1, created.Spec.Replicas);

        var patched = await _client.AppsV1.PatchNamespacedDeploymentAsync(
            new V1Patch("""{"metadata":{"labels":{"tier":"gpu"}},"spec":{"template":{"spec":{"containers":[{"name":"teacher","image":"teacher:2"}]}}}}""", V1Patch.PatchType.MergePatch),
            "teacher", Ns).WaitAsync(Timeout);

        Assert.Equal("teacher:2", patched.Spec.Template.Spec.Containers.Single().Image);
        Assert.Equal("gpu", patched.Metadata.Labels["tier"]);
        Assert.Equal(2, patched.Metadata.Generation);
        Assert.Equal("teacher", patched.Spec.Selector.MatchLabels["app"]);
    }

    [Fact]
    public async Task PatchNamespacedDeployment_MetadataOnlyMergePatch_KeepsGeneration()
    {
        await _client.AppsV1.CreateNamespacedDeploymentAsync(Deployment("teacher"), Ns).WaitAsync(Timeout);

        var patched = await _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("""{"metadata":{"annotations":{"a":"b"}}}""", V1Patch.PatchType.MergePatch), "teacher", Ns).WaitAsync(Timeout);

        Assert.Equal(1, patched.Metadata.Generation);
    }

    [Fact]
    public async Task PatchNamespacedDeployment_JsonPatch_AppliesOperationsAndFailedTestIs422()
    {
        await _client.AppsV1.CreateNamespacedDeploymentAsync(Deployment("teacher"), Ns).WaitAsync(Timeout);

        var patched = await _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("""
            [
              {"op":"test","path":"/spec/replicas","value":1},
              {"op":"replace","path":"/spec/replicas","value":3},
              {"op":"add","path":"/metadata/labels","value":{"app.kubernetes.io/name":"teacher"}},
              {"op":"add","path":"/spec/template/spec/containers/0/env","value":[{"name":"MODEL","value":"tiny"}]}
            ]
            """, V1Patch.PatchType.JsonPatch), "teacher", Ns).WaitAsync(Timeout);
        var failed = await Assert.ThrowsAsync<HttpOperationException>(() => _client.AppsV1.PatchNamespacedDeploymentAsync(
            new V1Patch("""[{"op":"test","path":"/spec/replicas","value":1},{"op":"replace","path":"/spec/replicas","value":0}]""", V1Patch.PatchType.JsonPatch), "teacher", Ns).WaitAsync(Timeout));

        Assert.Equal(3, patched.Spec.Replicas);
        Assert.Equal("teacher", patched.Metadata.Labels["app.kubernetes.io/name"]);
        Assert.Equal("tiny", patched.Spec.Template.Spec.Containers[0].Env.Single().Value);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, failed.Response.StatusCode);
        Assert.Equal(3, (await _client.AppsV1.ReadNamespacedDeploymentAsync("teacher", Ns).WaitAsync(Timeout)).Spec.Replicas);
    }

    [Fact]
    public async Task PatchNamespacedDeployment_StrategicMergePatch_MergesContainersByName()
    {
        var deployment = Deployment("teacher");
        deployment.Spec.Template.Spec.Containers.Add(new V1Container { Name = "sidecar", Image = "sidecar:1" });
        await _client.AppsV1.CreateNamespacedDeploymentAsync(deployment, Ns).WaitAsync(Timeout);

        var patched = await _client.AppsV1.PatchNamespacedDeploymentAsync(
            new V1Patch("""{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"sidecar:2"}]}}}}""", V1Patch.PatchType.StrategicMergePatch),
            "teacher", Ns).WaitAsync(Timeout);

        Assert.Equal(["teacher:1", "sidecar:2"], patched.Spec.Template.Spec.Containers.Select(c => c.Image));
    }

    [Fact]
    public async Task PatchNamespacedPod_StrategicMergeFinalizers_MergeAsSetAndDeleteFromPrimitiveListRemoves()
    {
        var pod = Pod("a");
        pod.Metadata.Finalizers = ["one"];
        await _client.CoreV1.CreateNamespacedPodAsync(pod, Ns).WaitAsync(Timeout);

        var added = await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"finalizers":["two","one"]}}""", V1Patch.PatchType.StrategicMergePatch), "a", Ns).WaitAsync(Timeout);
        var removed = await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"$deleteFromPrimitiveList/finalizers":["one"]}}""", V1Patch.PatchType.StrategicMergePatch), "a", Ns).WaitAsync(Timeout);

        Assert.Equal(["one", "two"], added.Metadata.Finalizers);
        Assert.Equal(["two"], removed.Metadata.Finalizers);
    }

    [Fact]
    public async Task PatchNamespacedPodStatus_StrategicMergeConditions_MergeByType()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), Ns).WaitAsync(Timeout);
        _server.Patch("", "v1", "pods", Ns, "a", JsonNode.Parse("""{"status":{"conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"False"}]}}""")!.AsObject());

        var patched = await _client.CoreV1.PatchNamespacedPodStatusAsync(
            new V1Patch("""{"status":{"conditions":[{"type":"Ready","status":"True"}]}}""", V1Patch.PatchType.StrategicMergePatch), "a", Ns).WaitAsync(Timeout);

        Assert.Equal([("PodScheduled", "True"), ("Ready", "True")], patched.Status.Conditions.Select(c => (c.Type, c.Status)));
        Assert.Equal("Pending", patched.Status.Phase);
    }

    [Fact]
    public async Task PatchNamespacedDeployment_StaleResourceVersionInPatch_Conflict409()
    {
        var created = await _client.AppsV1.CreateNamespacedDeploymentAsync(Deployment("teacher"), Ns).WaitAsync(Timeout);
        await _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("""{"spec":{"replicas":2}}""", V1Patch.PatchType.MergePatch), "teacher", Ns).WaitAsync(Timeout);

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.AppsV1.PatchNamespacedDeploymentAsync(
            new V1Patch($$$"""{"metadata":{"resourceVersion":"{{{created.Metadata.ResourceVersion}}}"},"spec":{"replicas":5}}""", V1Patch.PatchType.MergePatch), "teacher", Ns).WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
    }

    [Fact]
    public async Task DeploymentScale_ReadThenPatch_SetsDeploymentSpecReplicas()
    {
        await _client.AppsV1.CreateNamespacedDeploymentAsync(Deployment("teacher", replicas: 2), Ns).WaitAsync(Timeout);

        var scale = await _client.AppsV1.ReadNamespacedDeploymentScaleAsync("teacher", Ns).WaitAsync(Timeout);
        var patched = await _client.AppsV1.PatchNamespacedDeploymentScaleAsync(new V1Patch("""{"spec":{"replicas":0}}""", V1Patch.PatchType.MergePatch), "teacher", Ns).WaitAsync(Timeout);
        var deployment = await _client.AppsV1.ReadNamespacedDeploymentAsync("teacher", Ns).WaitAsync(Timeout);

        Assert.Equal(("Scale", "autoscaling/v1", "teacher", 2), (scale.Kind, scale.ApiVersion, scale.Metadata.Name, scale.Spec.Replicas));
        Assert.Equal("app=teacher", scale.Status.Selector);
        Assert.Equal(0, patched.Spec.Replicas);
        Assert.Equal(0, deployment.Spec.Replicas);
        Assert.Equal(2, deployment.Metadata.Generation);
    }

    [Fact]
    public async Task ReplaceNamespacedJobStatus_NewStatus_ChangesOnlyStatusAndKeepsGeneration()
    {
        var created = await _client.BatchV1.CreateNamespacedJobAsync(Job("extract"), Ns).WaitAsync(Timeout);
        Assert.Null(created.Status);

        created.Status = new V1JobStatus { Active = 1 };
        created.Spec.Parallelism = 4;
        var replaced = await _client.BatchV1.ReplaceNamespacedJobStatusAsync(created, "extract", Ns).WaitAsync(Timeout);

        Assert.Equal(1, replaced.Status.Active);
        Assert.Equal(1, replaced.Spec.Parallelism);
        Assert.Equal(1, replaced.Metadata.Generation);
        Assert.NotEqual(created.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);

        // The main resource ignores status: a spec replace keeps the stored status and bumps generation.
        replaced.Status = new V1JobStatus { Failed = 9 };
        replaced.Spec.Parallelism = 2;
        var main = await _client.BatchV1.ReplaceNamespacedJobAsync(replaced, "extract", Ns).WaitAsync(Timeout);
        Assert.Equal((1, null, 2, 2L), (main.Status.Active, main.Status.Failed, main.Spec.Parallelism, main.Metadata.Generation));
    }

    [Fact]
    public async Task CustomResource_CreateThenPatchStatus_StatusChangesSpecAndGenerationDoNot()
    {
        var created = Json(await _client.CustomObjects.CreateNamespacedCustomObjectAsync(Run("run-1", "tiny"), Group, Version, Ns, Runs).WaitAsync(Timeout));
        Assert.Equal("DistillationRun", created["kind"]!.GetValue<string>());
        Assert.Null(created["status"]);

        var patched = Json(await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(
            new V1Patch("""{"status":{"phase":"Training","observedGeneration":1},"spec":{"student":"huge"}}""", V1Patch.PatchType.MergePatch),
            Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout));

        Assert.Equal("Training", patched["status"]!["phase"]!.GetValue<string>());
        Assert.Equal("tiny", patched["spec"]!["student"]!.GetValue<string>());
        Assert.Equal(1, patched["metadata"]!["generation"]!.GetValue<long>());
        Assert.NotEqual(created["metadata"]!["resourceVersion"]!.GetValue<string>(), patched["metadata"]!["resourceVersion"]!.GetValue<string>());
    }

    [Fact]
    public async Task CustomResource_PatchSpec_BumpsGenerationAndKeepsStatus()
    {
        await _client.CustomObjects.CreateNamespacedCustomObjectAsync(Run("run-1", "tiny"), Group, Version, Ns, Runs).WaitAsync(Timeout);
        await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(new V1Patch("""{"status":{"phase":"Training"}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout);

        var patched = Json(await _client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch("""{"spec":{"student":"small"},"status":{"phase":"Hacked"}}""", V1Patch.PatchType.MergePatch), Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout));

        Assert.Equal("small", patched["spec"]!["student"]!.GetValue<string>());
        Assert.Equal("Training", patched["status"]!["phase"]!.GetValue<string>());
        Assert.Equal(2, patched["metadata"]!["generation"]!.GetValue<long>());
    }

    [Fact]
    public async Task CustomResource_StrategicMergePatch_UnsupportedMediaType415()
    {
        await _client.CustomObjects.CreateNamespacedCustomObjectAsync(Run("run-1", "tiny"), Group, Version, Ns, Runs).WaitAsync(Timeout);

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch("""{"spec":{"student":"small"}}""", V1Patch.PatchType.StrategicMergePatch), Group, Version, Ns, Runs, "run-1").WaitAsync(Timeout));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, e.Response.StatusCode);
    }

    [Fact]
    public async Task GenericClient_CustomResource_CreateReadListPatchDelete()
    {
        using var runs = new GenericClient(_client, Group, Version, Runs, disposeClient: false);

        var created = await runs.CreateNamespacedAsync(new DistillationRunObject { Metadata = new V1ObjectMeta { Name = "run-1" }, Spec = new DistillationRunObject.RunSpec { Student = "tiny" } }, Ns).WaitAsync(Timeout);
        var read = await runs.ReadNamespacedAsync<DistillationRunObject>(Ns, "run-1").WaitAsync(Timeout);
        var list = await runs.ListNamespacedAsync<DistillationRunList>(Ns).WaitAsync(Timeout);
        var patched = await runs.PatchNamespacedAsync<DistillationRunObject>(new V1Patch("""{"spec":{"student":"small"}}""", V1Patch.PatchType.MergePatch), Ns, "run-1").WaitAsync(Timeout);
        await runs.DeleteNamespacedAsync<DistillationRunObject>(Ns, "run-1").WaitAsync(Timeout);

        Assert.Equal(1, created.Metadata.Generation);
        Assert.Equal(created.Metadata.Uid, read.Metadata.Uid);
        Assert.Equal("tiny", read.Spec!.Student);
        Assert.Equal(["run-1"], list.Items.Select(r => r.Metadata.Name));
        Assert.Equal(("small", 2L), (patched.Spec!.Student, patched.Metadata.Generation!.Value));
        Assert.Empty(_server.List(Group, Version, Runs, Ns));
    }

    private static V1Deployment Deployment(string name, int? replicas = 1) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1DeploymentSpec
        {
            Replicas = replicas,
            Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = name } },
            Template = new V1PodTemplateSpec
            {
                Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = name } },
                Spec = new V1PodSpec { Containers = [new V1Container { Name = name, Image = $"{name}:1" }] },
            },
        },
    };

    private static V1Job Job(string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1JobSpec
        {
            Parallelism = 1,
            Template = new V1PodTemplateSpec { Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [new V1Container { Name = "job", Image = "extractor:1" }] } },
        },
    };

    private static JsonObject Run(string name, string student) => new()
    {
        ["apiVersion"] = $"{Group}/{Version}",
        ["kind"] = "DistillationRun",
        ["metadata"] = new JsonObject { ["name"] = name },
        ["spec"] = new JsonObject { ["student"] = student },
        ["status"] = new JsonObject { ["phase"] = "ShouldBeDropped" },
    };
}
