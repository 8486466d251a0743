using System.Text.Json.Nodes;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Operator.Tests.Cluster;

namespace Distill.Mesh.Operator.Tests;

/// <summary>GPU pods that wait for a node or a quota: the run says why, in the scheduler's words, and fails only after its grace.</summary>
public class SchedulingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private const string Message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";

    private static V1ConditionView Progressing(DistillationRun run) =>
        run.Status.Conditions.FirstOrDefault(c => c.Type == RunConditions.Progressing) is { } c ? new(c.Status, c.Reason, c.Message) : new("", "", "");

    private sealed record V1ConditionView(string Status, string Reason, string Message);

    [Fact]
    public async Task GpuPodThatFitsNowhere_HoldsTheRunWithTheSchedulersMessage_ThenFailsItAfterTheGrace()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        harness.Cluster.Scheduler.Nodes.Clear();
        harness.Cluster.Scheduler.Nodes.AddRange([new SimulatedNode("node-0", 0), new SimulatedNode("node-1", 0), new SimulatedNode("node-2", 0)]);
        await harness.StartControllerAsync();
        harness.CreateRun("no-gpu", harness.Spec(4, "[train]", recipe: "sft"), spec =>
        {
            spec.Resources.Train = new PodResourcesSpec { Gpus = 1 };
            spec.UnschedulableGraceSeconds = 3;
        });

        var waiting = await harness.RunAsync("no-gpu", r => Progressing(r).Reason == "Unschedulable", Timeout, "Progressing=False/Unschedulable");
        var since = DateTime.UtcNow;
        Assert.Equal(RunPhases.Running, waiting.Status.Phase);
        Assert.Equal(new V1ConditionView("False", "Unschedulable", Message), Progressing(waiting));

        var failed = await harness.RunAsync("no-gpu", r => r.Status.Phase == RunPhases.Failed, Timeout, "Failed");
        Assert.True(DateTime.UtcNow - since >= TimeSpan.FromSeconds(2), "the run failed before its 3 s grace");
        Assert.Equal("Unschedulable", failed.Status.Reason);
        Assert.Contains(Message, failed.Status.Message);
        Assert.Equal("True", failed.Status.Conditions.Single(c => c.Type == RunConditions.Failed).Status);
        // Its Job is suspended, so the pending pod goes and nothing waits for a GPU any longer.
        Assert.True(Assert.Single(harness.Cluster.JobsOf("no-gpu")).Spec.Suspend);
        await harness.Cluster.EventuallyAsync(() => harness.Cluster.Pods("distill.mesh.io/run", "no-gpu"), pods => pods.Count == 0, Timeout, "the run's pods to go");
    }

    [Fact]
    public async Task PodWaitingForAGpu_StartsWhenANodeWithOneJoins_AndTheRunCarriesOn()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        harness.Cluster.Scheduler.Nodes.Clear();
        harness.Cluster.Scheduler.Nodes.AddRange([new SimulatedNode("node-0", 0), new SimulatedNode("node-1", 0), new SimulatedNode("node-2", 0)]);
        await harness.StartControllerAsync();
        harness.CreateRun("later", harness.Spec(4, "[train]", recipe: "sft"), spec => spec.Resources.Train = new PodResourcesSpec { Gpus = 2 });

        await harness.RunAsync("later", r => Progressing(r).Reason == "Unschedulable", Timeout, "Progressing=False/Unschedulable");
        lock (harness.Cluster.Scheduler.Nodes)
            harness.Cluster.Scheduler.Nodes.Add(new SimulatedNode("node-3", 2));

        var done = await harness.RunAsync("later", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        Assert.Null(done.Status.Stages.Single().WaitingSince);
        Assert.Equal("node-3", harness.Cluster.Kubelet.Started.Values.Single().Pod.Spec.NodeName);
    }

    [Fact]
    public async Task JobWaitingForKueueQuota_SaysSoWithKueuesMessage_AndStartsWhenAdmitted()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        harness.Cluster.Api.RegisterCustomResource("kueue.x-k8s.io", "v1beta1", "workloads", "Workload", statusSubresource: true);
        await harness.StartControllerAsync();
        harness.CreateRun("queued", harness.Spec(4, "[train]", recipe: "sft"), spec => spec.Resources.Train = new PodResourcesSpec { Gpus = 1, QueueName = "team-a" });

        // The Job waits suspended with the queue label, as Kueue expects; Kueue's Workload says why.
        var job = await harness.Cluster.EventuallyAsync(() => harness.Cluster.JobsOf("queued").SingleOrDefault(), j => j.Spec.Suspend == true, Timeout, "the suspended train Job");
        Assert.Equal("team-a", job.Metadata.Labels["kueue.x-k8s.io/queue-name"]);
        const string quota = "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor h100, 1 more needed";
        harness.Cluster.Api.Put("kueue.x-k8s.io", "v1beta1", "workloads", JsonNode.Parse($$"""
            { "apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "Workload",
              "metadata": { "name": "job-queued-train-1a2b3", "namespace": "default",
                            "ownerReferences": [ { "apiVersion": "batch/v1", "kind": "Job", "name": "{{job.Metadata.Name}}", "uid": "{{job.Metadata.Uid}}", "controller": true } ] },
              "spec": { "queueName": "team-a" },
              "status": { "conditions": [ { "type": "QuotaReserved", "status": "False", "reason": "Pending", "message": "{{quota}}", "lastTransitionTime": "2026-01-01T00:00:00Z" } ] } }
            """)!.AsObject());

        var waiting = await harness.RunAsync("queued", r => Progressing(r).Message == quota, Timeout, "Progressing=False/WaitingForQuota with Kueue's message");
        Assert.Equal(new V1ConditionView("False", "WaitingForQuota", quota), Progressing(waiting));
        Assert.Empty(harness.Cluster.Pods("distill.mesh.io/run", "queued"));

        // Kueue admits the Job: it unsuspends it, and the run goes on.
        harness.Cluster.Api.Patch("batch", "v1", "jobs", "default", job.Metadata.Name, new JsonObject { ["spec"] = new JsonObject { ["suspend"] = false } });
        await harness.RunAsync("queued", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
    }
}
