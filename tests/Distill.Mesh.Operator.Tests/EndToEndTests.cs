using Distill.Mesh.Contracts.Registry.V1;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Grpc.Core;

namespace Distill.Mesh.Operator.Tests;

/// <summary>A run submitted through the runs API, reconciled by the operator, its pods run by the real services.</summary>
public class EndToEndTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task SubmittedRun_TakesEveryStageAsItsOwnPods_AndTheAdapterLandsInTheRegistryWithItsLineage()
    {
        await using var harness = await OperatorHarness.StartAsync(realPods: true, redis: true);
        var controller = await harness.StartControllerAsync();
        var spec = harness.Spec(6, "[precompute, train, extract, evaluate, publish]", evalFraction: 0.25, extra: """
            precompute: { shards: 2 }
            extract: { rank: 4, svd: randomized, shards: 2 }
            publish: { name: tiny-student, tags: [candidate] }
            """);

        var submitted = await controller.Runs.SubmitAsync(new SubmitRequest { RunId = "tiny-kd", SpecYaml = spec }, deadline: DateTime.UtcNow + Timeout);
        var events = new List<RunEvent>();
        using (var call = controller.Runs.Watch(new WatchRunRequest { RunId = "tiny-kd" }, deadline: DateTime.UtcNow + Timeout))
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync())
                events.Add(e);
        }

        var run = harness.Cluster.Run("tiny-kd")!;
        Assert.True(run.Status.Phase == RunPhases.Succeeded, $"{k8s.KubernetesJson.Serialize(run.Status)}\n{harness.Cluster.Kubelet.Logs()}");
        Assert.Equal(["precompute", "train", "extract", "evaluate", "publish"], run.Status.Stages.Select(s => s.Name));
        Assert.All(run.Status.Stages, s => Assert.Equal(StageStates.Succeeded, s.State));
        Assert.All(run.Status.Stages.Zip(run.Status.Stages.Skip(1)), pair => Assert.True(pair.First.CompletionTime <= pair.Second.StartTime, $"{pair.First.Name} ended after {pair.Second.Name} started"));
        Assert.Equal(submitted.SpecSha256, run.Status.SpecSha256);

        // One Job per part of a stage, each owned by the run; the sharded stages are Indexed Jobs with a pod per index.
        var jobs = harness.Cluster.JobsOf("tiny-kd").ToDictionary(j => j.Metadata.Name);
        Assert.Equal(["tiny-kd-consolidate", "tiny-kd-evaluate", "tiny-kd-extract", "tiny-kd-precompute", "tiny-kd-publish", "tiny-kd-train"], jobs.Keys.Order(StringComparer.Ordinal));
        Assert.All(jobs.Values, j => Assert.Equal(run.Metadata.Uid, Assert.Single(j.Metadata.OwnerReferences).Uid));
        Assert.Equal(("Indexed", 2), (jobs["tiny-kd-precompute"].Spec.CompletionMode, jobs["tiny-kd-precompute"].Spec.Completions));
        Assert.Equal(("Indexed", 2), (jobs["tiny-kd-extract"].Spec.CompletionMode, jobs["tiny-kd-extract"].Spec.Completions));
        var started = harness.Cluster.Kubelet.Started.Values.ToLookup(p => p.Pod.Metadata.Labels.TryGetValue("job-name", out var job) ? job : "");
        Assert.Equal(["0", "1"], started["tiny-kd-precompute"].Select(p => p.Environment["JOB_COMPLETION_INDEX"]).Order());
        Assert.Equal(["0", "1"], started["tiny-kd-extract"].Select(p => p.Environment["JOB_COMPLETION_INDEX"]).Order());
        Assert.Single(started["tiny-kd-train"]);

        // The teacher served train and evaluate from a shared Deployment behind a headless Service.
        var teacher = Assert.Single(harness.Cluster.Api.List("apps", "v1", "deployments"));
        Assert.Equal(run.Status.Teacher, teacher["metadata"]!["name"]!.GetValue<string>());
        Assert.NotNull(harness.Cluster.Api.Get("", "v1", "services", "default", run.Status.Teacher!));

        // Progress came from the trainer pod (relayed to the watcher, mirrored into the status) and so did the artifact.
        var steps = events.Where(e => e.EventCase == RunEvent.EventOneofCase.Train).Select(e => e.Train.Step).ToList();
        Assert.Contains(6L, steps);
        Assert.Equal(6, run.Status.Progress?.Step);
        Assert.Equal("tiny-student:1", run.Status.Artifact);
        Assert.Equal(RunPhase.Succeeded, events[^1].Snapshot.Phase);

        var registry = new RegistryService.RegistryServiceClient(harness.Registry);
        var artifact = await registry.GetAsync(new GetArtifactRequest { Ref = "tiny-student@candidate" }, deadline: DateTime.UtcNow + Timeout);
        Assert.Equal(ArtifactKind.Adapter, artifact.Manifest.Kind);
        Assert.Equal(("extract", "tiny-kd"), (artifact.Manifest.Lineage.Method, artifact.Manifest.Lineage.RunId));
        Assert.True(artifact.Manifest.Lineage.Metrics.ContainsKey("perplexity"));

        // Transitions were recorded as Kubernetes Events on the run.
        var reasons = harness.Cluster.Api.List("", "v1", "events", "default").Select(e => e["reason"]!.GetValue<string>()).ToList();
        Assert.Contains("StageStarted", reasons);
        Assert.Contains("Succeeded", reasons);
    }
}
