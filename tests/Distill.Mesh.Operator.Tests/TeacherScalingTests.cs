using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Controller.Kubernetes.Resources;
using Distill.Mesh.Controller.Kubernetes.Scaling;
using Distill.Mesh.Operator.Tests.Cluster;
using k8s.Models;

namespace Distill.Mesh.Operator.Tests;

/// <summary>The shared teacher Deployment follows demand: up for the runs that need it, down to zero once idle for its timeout.</summary>
public class TeacherScalingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task IdleTeacher_ScalesToZeroAfterItsIdleTimeout_AndComesBackForTheNextRun()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        await harness.StartControllerAsync();
        var teacher = new TeacherSpec { Model = harness.TeacherFolder, Dtype = "float32", Device = "cpu", IdleTimeoutSeconds = 3, Resources = new PodResourcesSpec { Gpus = 1 } };
        var name = TeacherPool.Name(teacher);
        V1Deployment? Deployment() => harness.Cluster.Api.Get("apps", "v1", "deployments", "default", name) is { } d ? Objects.Typed<V1Deployment>(d) : null;
        var teacherPods = () => harness.Cluster.Pods("distill.mesh.io/teacher", name).Where(p => p.Metadata.DeletionTimestamp is null).ToList();

        harness.CreateRun("first", harness.Spec(4, "[train]"), spec => spec.Teacher = teacher);
        var first = await harness.RunAsync("first", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        var finished = DateTime.UtcNow;
        Assert.Equal(name, first.Status.Teacher);
        Assert.Equal("True", first.Status.Conditions.Single(c => c.Type == RunConditions.TeacherReady).Status);
        // The train pod started only after the teacher was Ready.
        var trainStarted = harness.Cluster.Kubelet.Started.Values.Single(p => p.Pod.Metadata.Labels.TryGetValue("job-name", out var job) && job == "first-train").StartedAt;
        var teacherReady = harness.Cluster.Kubelet.Started.Values.Single(p => p.Component == "teacher").ReadyAt;
        Assert.True(trainStarted > teacherReady, $"train pod started at {trainStarted:O}, the teacher was ready at {teacherReady:O}");

        // Idle: the clock starts once no run needs it, and it goes to zero after the timeout, not before.
        var idle = await harness.Cluster.EventuallyAsync(Deployment, d => d.Metadata.Annotations?.ContainsKey(TeacherScaler.IdleSince) == true, Timeout, "the idle clock to start");
        Assert.Equal(1, idle.Spec.Replicas);
        await harness.Cluster.EventuallyAsync(Deployment, d => d.Spec.Replicas == 0, Timeout, "the teacher to scale to zero");
        Assert.True(DateTime.UtcNow - finished >= TimeSpan.FromSeconds(2.5), $"scaled to zero {(DateTime.UtcNow - finished).TotalSeconds:F1} s after the run ended (idle timeout 3 s)");
        await harness.Cluster.EventuallyAsync(() => teacherPods(), pods => pods.Count == 0, Timeout, "the teacher pods to go");

        // A new run with the same teacher brings it back, and shares the Deployment.
        harness.CreateRun("second", harness.Spec(4, "[train]"), spec => spec.Teacher = teacher);
        await harness.Cluster.EventuallyAsync(Deployment, d => d.Spec.Replicas == 1 && d.Metadata.Annotations?.ContainsKey(TeacherScaler.IdleSince) != true, Timeout, "the teacher to scale up again");
        await harness.RunAsync("second", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        var shared = Deployment()!;
        Assert.Equal(["first", "second"], shared.Metadata.OwnerReferences.Select(o => o.Name).Order(StringComparer.Ordinal));
        Assert.Single(harness.Cluster.Api.List("apps", "v1", "deployments"));
    }

    [Fact]
    public async Task TeacherStillLoading_IsNotCutOffByTheIdleTimer()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: false);
        harness.Scripts.TeacherLoad = TimeSpan.FromSeconds(4);
        await harness.StartControllerAsync();
        var teacher = new TeacherSpec { Model = harness.TeacherFolder, Dtype = "float32", Device = "cpu", IdleTimeoutSeconds = 1, Resources = new PodResourcesSpec { Gpus = 1 } };

        harness.CreateRun("slow-teacher", harness.Spec(4, "[train]"), spec => spec.Teacher = teacher);
        var waiting = await harness.RunAsync("slow-teacher", r => r.Status.Conditions.Any(c => c.Type == RunConditions.Progressing && c.Reason == "WaitingForTeacher"), Timeout, "waiting for the teacher");
        Assert.Equal("False", waiting.Status.Conditions.Single(c => c.Type == RunConditions.TeacherReady).Status);

        await harness.RunAsync("slow-teacher", r => r.Status.Phase == RunPhases.Succeeded, Timeout, "Succeeded");
        Assert.Single(harness.Cluster.Kubelet.Started.Values, p => p.Component == "teacher");
    }
}
