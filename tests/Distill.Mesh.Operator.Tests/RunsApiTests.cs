using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Grpc.Core;

namespace Distill.Mesh.Operator.Tests;

/// <summary>The runs API on the Kubernetes backend: runs are DistillationRuns; cancel and resubmit behave as on one machine.</summary>
public class RunsApiTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Cancel_RemovesTheRunsPods_AndEndsItCancelled()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        harness.Scripts.Hold("train");
        var controller = await harness.StartControllerAsync();
        await controller.Runs.SubmitAsync(new SubmitRequest { RunId = "to-cancel", SpecYaml = harness.Spec(4, "[train, publish]", recipe: "sft", extra: "publish: { name: never }") });
        await harness.Cluster.EventuallyAsync(() => harness.Cluster.Pods("job-name", "to-cancel-train"), pods => pods.Any(p => p.Status.Phase == "Running"), Timeout, "the train pod to run");

        await controller.Runs.CancelAsync(new CancelRunRequest { RunId = "to-cancel" });

        var run = await harness.RunAsync("to-cancel", r => r.Status.Phase == RunPhases.Cancelled, Timeout, "Cancelled");
        // The running stage is cancelled; the one that never started stays pending.
        Assert.Equal([StageStates.Cancelled, StageStates.Pending], run.Status.Stages.Select(s => s.State));
        await harness.Cluster.EventuallyAsync(() => harness.Cluster.Pods("distill.mesh.io/run", "to-cancel"), pods => pods.Count == 0, Timeout, "the run's pods to go");
        Assert.True(harness.Cluster.JobsOf("to-cancel").Single().Spec.Suspend);
        Assert.Equal(RunPhase.Cancelled, (await controller.Runs.GetAsync(new GetRunRequest { RunId = "to-cancel" })).Phase);
        // Nothing after the cancelled stage started.
        Assert.DoesNotContain(harness.Cluster.JobsOf("to-cancel"), j => j.Metadata.Name == "to-cancel-publish");
    }

    [Fact]
    public async Task ResubmittedRunId_IsTheSameRun_AndAnotherSpecUnderItIsRefused()
    {
        var reconciles = new System.Collections.Concurrent.ConcurrentBag<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == Distill.Mesh.ServiceDefaults.MeshTelemetry.Name,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.OperationName == "operator.reconcile")
                    reconciles.Add(a);
            },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        var controller = await harness.StartControllerAsync();
        var spec = harness.Spec(4, "[train]", recipe: "sft");

        var first = await controller.Runs.SubmitAsync(new SubmitRequest { RunId = "once", SpecYaml = spec });
        await harness.RunAsync("once", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        var again = await controller.Runs.SubmitAsync(new SubmitRequest { RunId = "once", SpecYaml = spec });
        var other = await Assert.ThrowsAsync<RpcException>(() => controller.Runs.SubmitAsync(new SubmitRequest { RunId = "once", SpecYaml = harness.Spec(8, "[train]", recipe: "sft") }).ResponseAsync);

        Assert.Equal(first.SpecSha256, again.SpecSha256);
        Assert.False(first.Resubmitted);
        Assert.True(again.Resubmitted);
        Assert.Equal(first.Created, again.Created);
        Assert.Equal(RunPhase.Succeeded, again.Phase);
        Assert.Equal(StatusCode.AlreadyExists, other.StatusCode);
        Assert.Contains("another spec", other.Status.Detail);
        Assert.Single(harness.Cluster.Api.List(DistillationRun.Group, DistillationRun.Version, DistillationRun.Plural));
        Assert.Single(harness.Cluster.JobsOf("once"));
        // The run's pods continue the Submit call's trace.
        Assert.Matches("^[0-9a-f]{32}$", first.TraceId);
        var environment = harness.Cluster.JobsOf("once").Single().Spec.Template.Spec.Containers[0].Env;
        Assert.Matches($"^00-{first.TraceId}-[0-9a-f]{{16}}-0[01]$", environment.Single(e => e.Name == "TRACEPARENT").Value);
        Assert.Equal(first.TraceId, again.TraceId);
        // The operator's reconciles of the run are linked to the run's trace.
        Assert.Contains(reconciles, r => r.Links.Any(l => l.Context.TraceId.ToHexString() == first.TraceId));
        Assert.Single(harness.Cluster.Kubelet.Started.Values);
        Assert.Equal(["once"], (await controller.Runs.ListAsync(new ListRunsRequest())).Runs.Select(r => r.RunId));
    }
}
