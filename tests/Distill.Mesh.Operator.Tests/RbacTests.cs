using System.Net;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Testing;
using Grpc.Core;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests;

/// <summary>The chart's Role for the controller grants exactly the (verb, group, resource) calls the operator makes.</summary>
public class RbacTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ChartRole_GrantsEveryCallTheOperatorMakes_AndNothingElse()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        harness.Cluster.Api.RegisterCustomResource("kueue.x-k8s.io", "v1beta1", "workloads", "Workload", statusSubresource: true);
        // Every create of a child first loses a race (409), so the operator reads what "another" reconcile created.
        foreach (var resource in new[] { "jobs", "configmaps", "services", "deployments" })
            harness.Cluster.Api.FailNext("create", resource, HttpStatusCode.Conflict);
        var controller = await harness.StartControllerAsync();

        // A run through the runs API (its teacher served by a Deployment), watched, listed, read.
        await controller.Runs.SubmitAsync(new SubmitRequest { RunId = "through-api", SpecYaml = harness.Spec(4, "[train, publish]", extra: "publish: { name: api-student }") });
        using (var watch = controller.Runs.Watch(new WatchRunRequest { RunId = "through-api" }, deadline: DateTime.UtcNow + Timeout))
        {
            await foreach (var _ in watch.ResponseStream.ReadAllAsync())
            {
            }
        }

        Assert.Equal(RunPhase.Succeeded, (await controller.Runs.GetAsync(new GetRunRequest { RunId = "through-api" })).Phase);
        Assert.Single((await controller.Runs.ListAsync(new ListRunsRequest())).Runs);

        // A second run of the same teacher through a Kueue queue, cancelled while it waits.
        var teacher = harness.Cluster.Run("through-api")!.Spec.Teacher!;
        harness.CreateRun("queued", harness.Spec(4, "[train]"), spec =>
        {
            spec.Teacher = teacher;
            spec.Resources.Train = new PodResourcesSpec { Gpus = 1, QueueName = "team-a" };
        });
        await harness.RunAsync("queued", r => r.Status.Conditions.Any(c => c.Reason == "WaitingForQuota"), Timeout, "waiting for quota");
        await controller.Runs.CancelAsync(new CancelRunRequest { RunId = "queued" });
        await harness.RunAsync("queued", r => r.Status.Phase == RunPhases.Cancelled, Timeout, "Cancelled");
        await harness.Cluster.EventuallyAsync(() => harness.Cluster.Api.Get("apps", "v1", "deployments", "default", harness.Cluster.Run("queued")!.Status.Teacher!),
            d => d["metadata"]?["annotations"]?["distill.mesh.io/idle-since"] is not null, Timeout, "the teacher's idle clock (a scaler patch)");

        // A running run cancelled: its Job is suspended.
        harness.Scripts.Hold("train");
        harness.CreateRun("running", harness.Spec(4, "[train]", recipe: "sft"));
        await harness.Cluster.EventuallyAsync(() => harness.Cluster.Pods("job-name", "running-train"), pods => pods.Any(p => p.Status.Phase == "Running"), Timeout, "the train pod to run");
        await controller.Runs.CancelAsync(new CancelRunRequest { RunId = "running" });
        await harness.RunAsync("running", r => r.Status.Phase == RunPhases.Cancelled, Timeout, "Cancelled");

        var recorded = harness.Cluster.Api.Permissions().Select(p => $"{p.Verb} {p.Group}/{p.Resource}").ToHashSet();
        var role = Rendered(await KubeTools.TemplateAsync("distill-mesh", [], "--show-only", "templates/controller-rbac.yaml"));
        var granted = role.Rules.SelectMany(r => r.ApiGroups.SelectMany(g => r.Resources.SelectMany(res => r.Verbs.Select(v => $"{v} {g}/{res}")))).ToHashSet();

        var missing = recorded.Except(granted).Order().ToList();
        var unused = granted.Except(recorded).Order().ToList();
        Assert.True(missing.Count == 0 && unused.Count == 0,
            $"charts/distill-mesh/templates/controller-rbac.yaml: the operator called but the Role does not grant [{string.Join(", ", missing)}]; the Role grants but the operator never called [{string.Join(", ", unused)}]");
    }

    private static V1Role Rendered(string yaml) =>
        System.Text.RegularExpressions.Regex.Split(yaml, @"^---[ \t]*$", System.Text.RegularExpressions.RegexOptions.Multiline)
            .Where(d => System.Text.RegularExpressions.Regex.IsMatch(d, "^kind: Role$", System.Text.RegularExpressions.RegexOptions.Multiline))
            .Select(d => k8s.KubernetesYaml.Deserialize<V1Role>(d)).Single();
}
