using System.Text.Json;
using Distill.Mesh.Controller.Kubernetes;
using Distill.Mesh.Controller.Kubernetes.Entities;

namespace Distill.Mesh.Operator.Tests;

/// <summary>Controllers and pods that go away mid-run: nothing is created twice, nothing is trained twice, one replica reconciles.</summary>
public class ResilienceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task ControllerRestartedMidRun_FindsWhatItCreated_AndTheRunCompletes()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        harness.Scripts.Hold("train");
        var first = await harness.StartControllerAsync("controller-a");
        harness.CreateRun("restarted", harness.Spec(4, "[train, publish]", recipe: "sft", extra: "publish: { name: restarted-student }"));
        await harness.Cluster.EventuallyAsync(() => harness.Cluster.Pods("job-name", "restarted-train"), pods => pods.Any(p => p.Status.Phase == "Running"), Timeout, "the train pod to run");

        await harness.StopAsync(first);
        var second = await harness.StartControllerAsync("controller-b");
        // The new replica leads once the old lease expires, relists, and finds the run mid-stage.
        await harness.Cluster.EventuallyAsync(() => (object?)second.Operator.IsLeader, leads => (bool)leads, Timeout, "controller-b to lead");
        await harness.Cluster.EventuallyAsync(() => (object?)second.Metrics.ReconcileCount, n => (long)n > 0, Timeout, "controller-b to reconcile");
        harness.Scripts.Open("train");

        var done = await harness.RunAsync("restarted", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        Assert.Equal(["restarted-publish", "restarted-train"], harness.Cluster.JobsOf("restarted").Select(j => j.Metadata.Name).Order(StringComparer.Ordinal));
        Assert.Single(harness.Cluster.Kubelet.Started.Values, p => p.Pod.Metadata.Labels["job-name"] == "restarted-train");
        Assert.Single(harness.Cluster.Api.List("", "v1", "configmaps", "default"));
        Assert.Single(harness.Cluster.Api.List("", "v1", "events", "default"), e => e["reason"]!.GetValue<string>() == "StageStarted" && e["message"]!.GetValue<string>().Contains("stage train", StringComparison.Ordinal));
        Assert.All(done.Status.Stages, s => Assert.Equal(StageStates.Succeeded, s.State));
    }

    [Fact]
    public async Task TrainerPodEvictedMidRun_IsReplacedByTheJob_AndResumesWithEveryStepTrainedOnce()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: true);
        await harness.StartControllerAsync();
        // Long enough that the eviction lands mid-run (the tiny model trains a step in milliseconds).
        const int total = 400;
        harness.CreateRun("evicted", harness.Spec(total, "[train]", recipe: "sft", checkpointEvery: 50));
        var metrics = Path.Combine(harness.Cluster.Claim("distill-runs"), "evicted", "metrics.jsonl");
        List<long> Steps() => File.Exists(metrics) ? File.ReadAllLines(metrics).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToList() : [];

        await harness.Cluster.EventuallyAsync(() => Steps(), steps => steps.Count >= 4, Timeout, "four steps trained");
        var pod = harness.Cluster.Pods("job-name", "evicted-train").Single();
        harness.Cluster.Evict(pod);

        var done = await harness.RunAsync("evicted", r => r.Status.Phase is RunPhases.Succeeded or RunPhases.Failed, Timeout, "the run to end");
        Assert.True(done.Status.Phase == RunPhases.Succeeded, $"{k8s.KubernetesJson.Serialize(done.Status)}\n{harness.Cluster.Kubelet.Logs()}");
        var pods = harness.Cluster.Kubelet.Started.Values.Where(p => p.Pod.Metadata.Labels["job-name"] == "evicted-train").OrderBy(p => p.StartedAt).ToList();
        Assert.Equal(2, pods.Count);
        Assert.True(pods[1].Logs.Any(l => l.Contains("resum", StringComparison.OrdinalIgnoreCase)), harness.Cluster.Kubelet.Logs());
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), Steps());
        // An eviction is a disruption, not a failure: the Job's backoff is untouched.
        Assert.Equal(0, harness.Cluster.JobsOf("evicted").Single().Status.Failed ?? 0);
    }

    [Fact]
    public async Task TwoReplicas_OnlyTheLeaderReconciles_AndTheOtherTakesOverOnceTheLeaseExpires()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        var a = await harness.StartControllerAsync("controller-a");
        var b = await harness.StartControllerAsync("controller-b");
        await harness.Cluster.EventuallyAsync(() => (object?)(a.Operator.IsLeader || b.Operator.IsLeader), leads => (bool)leads, Timeout, "a leader");
        var (leader, other) = a.Operator.IsLeader ? (a, b) : (b, a);
        Assert.False(other.Operator.IsLeader);
        var lease = harness.Cluster.Api.Get("coordination.k8s.io", "v1", "leases", "default", KubernetesOperator.LeaseName)!;
        Assert.Equal(leader.Identity, lease["spec"]!["holderIdentity"]!.GetValue<string>());

        harness.CreateRun("first", harness.Spec(4, "[train]", recipe: "sft"));
        await harness.RunAsync("first", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        Assert.True(leader.Metrics.ReconcileCount > 0);
        Assert.Equal(0, other.Metrics.ReconcileCount);

        await harness.StopAsync(leader);
        await harness.Cluster.EventuallyAsync(() => (object?)other.Operator.IsLeader, leads => (bool)leads, Timeout, $"{other.Identity} to take over");
        harness.CreateRun("second", harness.Spec(4, "[train]", recipe: "sft"));
        await harness.RunAsync("second", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        lease = harness.Cluster.Api.Get("coordination.k8s.io", "v1", "leases", "default", KubernetesOperator.LeaseName)!;
        Assert.Equal(other.Identity, lease["spec"]!["holderIdentity"]!.GetValue<string>());
    }

    [Fact]
    public async Task ConflictsAndServerErrors_AreRetriedWithBackoff_AndTheRunStillCompletesOnce()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        var controller = await harness.StartControllerAsync();
        // Another writer got there first three times, then the server failed twice creating the Job.
        harness.Cluster.Api.FailNext("patch", "distillationruns/status", System.Net.HttpStatusCode.Conflict, times: 3);
        harness.Cluster.Api.FailNext("create", "jobs", System.Net.HttpStatusCode.InternalServerError, times: 2);
        harness.CreateRun("contended", harness.Spec(4, "[train]", recipe: "sft"));

        var done = await harness.RunAsync("contended", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        Assert.Single(harness.Cluster.JobsOf("contended"));
        Assert.Single(harness.Cluster.Kubelet.Started.Values);
        Assert.Equal(StageStates.Succeeded, done.Status.Stages.Single().State);
        Assert.Contains(harness.Cluster.Api.Calls, c => c is { Verb: "patch", Resource: "distillationruns", Subresource: "status" });
    }
}
