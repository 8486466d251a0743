using Distill.Mesh.ServiceDefaults;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Distill.Mesh.Contracts.Runs.V1;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Controller.Kubernetes.Progress;
using Distill.Mesh.Controller.Kubernetes.Reconciliation;
using Distill.Mesh.Controller.Kubernetes.Resources;
using Distill.Mesh.Controller.Runs;
using Distill.Mesh.Specs.Runs;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Controller.Kubernetes;

/// <summary>
/// The runs API on Kubernetes: a run is a DistillationRun. Submit creates it (idempotent per run
/// id: the spec's hash is an annotation), Get and List read them, Watch streams their status
/// changes and the progress their trainer pods report, Cancel suspends the run and marks it
/// cancelled (its pods go, its checkpoints stay).
/// </summary>
public sealed class KubernetesRunBackend(KubernetesConnection connection, ProgressRelay relay, IOptions<KubernetesOptions> options, ILogger<KubernetesRunBackend> logger) : IRunBackend
{
    private IKubernetes Client => connection.Client;

    private string Namespace => connection.Namespace;

    // The folders a spec names are the pods' (on the models claim): nothing to check here.
    public RunValidation Validation => new(CheckPaths: false, ThroughMesh: true, PrecomputeThroughServices: false);

    public async Task<Run> SubmitAsync(string runId, string specText, IReadOnlyList<string> overrides, ParsedRunSpec spec, CancellationToken cancellationToken)
    {
        System.Diagnostics.Activity.Current.ForRun(runId);
        var resource = Resource(runId, spec);
        try
        {
            var created = await Client.CustomObjects.CreateNamespacedCustomObjectAsync<DistillationRun>(resource, DistillationRun.Group, DistillationRun.Version, Namespace, DistillationRun.Plural, cancellationToken: cancellationToken);
            return ToRun(created);
        }
        catch (Exception e) when (KubeCalls.IsConflict(e))
        {
            var existing = await ReadAsync(runId, cancellationToken);
            return existing.Metadata.Annotations?.TryGetValue(Labels.SpecSha256, out var sha) == true && sha == spec.Sha256
                ? ToRun(existing).Resubmission()
                : throw new RunConflictException($"run '{runId}' exists with another spec; a run keeps its id and its spec, so submit this spec under another run id (or delete that DistillationRun first)");
        }
    }

    /// <summary>The DistillationRun a runs-API submission becomes (the teacher served by a shared Deployment when the spec names no service).</summary>
    public DistillationRun Resource(string runId, ParsedRunSpec spec)
    {
        var settings = options.Value;
        var canonical = (JsonObject)spec.Canonical.DeepClone();
        canonical.Remove("output_dir");
        var teachers = spec.Spec.Train.Teachers;
        var served = teachers.Count == 1 && teachers[0].Endpoint is null && spec.Spec.Mesh.Teacher is null && spec.Spec.Train.Recipe != "sft";
        var resources = new StageResourcesSpec();
        foreach (var (stage, gpus) in settings.StageGpus.Where(s => spec.Spec.Has(s.Key)))
        {
            var pod = new PodResourcesSpec { Gpus = gpus };
            _ = stage switch
            {
                "precompute" => resources.Precompute = pod,
                "train" => resources.Train = pod,
                "extract" => resources.Extract = pod,
                "evaluate" => resources.Evaluate = pod,
                _ => resources.Publish = pod,
            };
        }

        return new DistillationRun
        {
            Metadata = new V1ObjectMeta
            {
                Name = runId,
                NamespaceProperty = Namespace,
                Annotations = TraceAnnotation(new Dictionary<string, string> { [Labels.SpecSha256] = spec.Sha256 }),
                Labels = new Dictionary<string, string> { [Labels.ManagedBy] = Labels.Controller },
            },
            Spec = new DistillationRunSpec
            {
                Run = canonical,
                Teacher = served ? new TeacherSpec
                {
                    Model = teachers[0].Model,
                    Dtype = teachers[0].Dtype is "bfloat16" or "bf16" ? "bfloat16" : "float32",
                    Device = settings.TeacherDevice,
                    IdleTimeoutSeconds = settings.TeacherIdleTimeoutSeconds,
                    Resources = new PodResourcesSpec { Gpus = settings.TeacherGpus },
                } : null,
                Resources = resources,
                Storage = new StorageSpec { RunsClaim = settings.RunsClaim, ModelsClaim = settings.ModelsClaim },
            },
        };
    }

    private Task<DistillationRun> ReadAsync(string runId, CancellationToken cancellationToken) =>
        Client.CustomObjects.GetNamespacedCustomObjectAsync<DistillationRun>(DistillationRun.Group, DistillationRun.Version, Namespace, DistillationRun.Plural, runId, cancellationToken);

    public async Task<Run> GetAsync(string runId, CancellationToken cancellationToken) =>
        ToRun(await KubeCalls.OrNullAsync(() => ReadAsync(runId, cancellationToken)) ?? throw new KeyNotFoundException($"no run '{runId}' (DistillationRun {Namespace}/{runId})"));

    public async Task<IReadOnlyList<Run>> ListAsync(CancellationToken cancellationToken)
    {
        var list = await Client.CustomObjects.ListNamespacedCustomObjectAsync<DistillationRunList>(DistillationRun.Group, DistillationRun.Version, Namespace, DistillationRun.Plural, cancellationToken: cancellationToken);
        return list.Items.Select(ToRun).OrderBy(r => r.RunId, StringComparer.Ordinal).ToList();
    }

    public async IAsyncEnumerable<RunEvent> WatchAsync(string runId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reports = relay.Subscribe(runId);
        var current = await KubeCalls.OrNullAsync(() => ReadAsync(runId, cancellationToken)) ?? throw new KeyNotFoundException($"no run '{runId}'");
        var snapshot = ToRun(current);
        yield return Snapshot(snapshot);
        if (Final(snapshot.Phase))
            yield break;

        var events = System.Threading.Channels.Channel.CreateUnbounded<RunEvent>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var seen = snapshot;
        // The run's status changes (a watch that expires or ends is resumed, or relisted on 410), until it ends.
        var statuses = ListWatch.RunAsync<DistillationRun>($"run {runId}",
            async ct =>
            {
                var run = await ReadAsync(runId, ct);
                return ([run], run.Metadata.ResourceVersion);
            },
            (rv, onError, ct) => RunWatch.Of(Client, Namespace, rv, onError, ct),
            (type, run) =>
            {
                if (run.Metadata.Name != runId)
                    return;
                var next = ToRun(run);
                foreach (var change in Changes(seen, next))
                    events.Writer.TryWrite(change);
                seen = next;
                if (type == WatchEventType.Deleted || Final(next.Phase))
                {
                    events.Writer.TryComplete();
                    stop.Cancel();
                }
            }, logger, stop.Token).ContinueWith(_ => events.Writer.TryComplete(), TaskScheduler.Default);
        var relayed = Task.Run(async () =>
        {
            await foreach (var e in reports.Reader.ReadAllAsync(stop.Token))
                events.Writer.TryWrite(e);
        }, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);

        await foreach (var e in events.Reader.ReadAllAsync(cancellationToken))
            yield return e;
        await stop.CancelAsync();
        await Task.WhenAll(statuses, relayed);
        yield return Snapshot(await GetAsync(runId, cancellationToken));
    }

    public async Task<Run> CancelAsync(string runId, CancellationToken cancellationToken)
    {
        var run = await KubeCalls.OrNullAsync(() => ReadAsync(runId, cancellationToken)) ?? throw new KeyNotFoundException($"no run '{runId}'");
        if (!RunStatusEditor.IsTerminal(run.Status?.Phase ?? RunPhases.Pending))
        {
            var body = KubernetesJson.Serialize(new { metadata = new { annotations = new Dictionary<string, string> { [Labels.Cancelled] = "true" } }, spec = new { suspend = true } });
            await Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch(body, V1Patch.PatchType.MergePatch), DistillationRun.Group, DistillationRun.Version, Namespace, DistillationRun.Plural, runId, cancellationToken: cancellationToken);
        }

        return await GetAsync(runId, cancellationToken);
    }

    private static bool Final(RunPhase phase) => phase is RunPhase.Succeeded or RunPhase.Failed or RunPhase.Cancelled;

    private static RunEvent Snapshot(Run run) => new() { RunId = run.RunId, Phase = run.Phase, Stage = run.CurrentStage, Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.UtcNow), Snapshot = run };

    /// <summary>Stage transitions between two views of a run.</summary>
    private static IEnumerable<RunEvent> Changes(Run before, Run after)
    {
        foreach (var stage in after.Stages)
        {
            var old = before.Stages.FirstOrDefault(s => s.Name == stage.Name);
            if (old?.State != stage.State)
                yield return new RunEvent { RunId = after.RunId, Stage = stage.Name, Phase = after.Phase, Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.UtcNow), Transition = new StageTransition { State = stage.State, Message = stage.Message } };
        }
    }

    /// <summary>A DistillationRun in the runs API's terms.</summary>
    private static Dictionary<string, string> TraceAnnotation(Dictionary<string, string> annotations)
    {
        if (System.Diagnostics.Activity.Current is { IdFormat: System.Diagnostics.ActivityIdFormat.W3C } current)
            annotations[Labels.TraceParent] = current.Id!;
        return annotations;
    }

    public static Run ToRun(DistillationRun resource)
    {
        var status = resource.Status ?? new DistillationRunStatus();
        var run = new Run
        {
            RunId = resource.Metadata.Name,
            Phase = status.Phase switch
            {
                RunPhases.Running => RunPhase.Running,
                RunPhases.Succeeded => RunPhase.Succeeded,
                RunPhases.Failed => RunPhase.Failed,
                RunPhases.Cancelled => RunPhase.Cancelled,
                _ => RunPhase.Pending,
            },
            Reason = status.Phase == RunPhases.Suspended ? "suspended" : status.Message ?? "",
            CurrentStage = status.CurrentStage ?? "",
            OutputDir = $"{resource.Spec.Storage.RunsClaim}:{PodTemplates.RunsFolder}/{resource.Metadata.Name}",
            SpecSha256 = resource.Metadata.Annotations?.TryGetValue(Labels.SpecSha256, out var sha) == true ? sha : status.SpecSha256 ?? "",
            TraceId = resource.Metadata.Annotations?.TryGetValue(Labels.TraceParent, out var parent) == true && parent.Split('-') is [_, var trace, _, _] ? trace : "",
            Artifact = status.Artifact ?? "",
            Progress = new TrainProgress { Step = status.Progress?.Step ?? 0, TotalSteps = status.Progress?.TotalSteps ?? 0, Loss = status.Progress?.Loss ?? 0, TokensPerSecond = status.Progress?.TokensPerSecond ?? 0 },
        };
        if (resource.Metadata.CreationTimestamp is { } created)
            run.Created = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.SpecifyKind(created, DateTimeKind.Utc));
        foreach (var stage in status.Stages)
        {
            var mapped = new StageStatus
            {
                Name = stage.Name,
                Message = stage.Message ?? "",
                State = stage.State switch
                {
                    StageStates.Running => StageState.Running,
                    StageStates.Succeeded => StageState.Succeeded,
                    StageStates.Failed => StageState.Failed,
                    StageStates.Cancelled => StageState.Cancelled,
                    _ => StageState.Pending,
                },
            };
            if (stage.StartTime is { } started)
                mapped.Started = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.SpecifyKind(started, DateTimeKind.Utc));
            if (stage.CompletionTime is { } ended)
                mapped.Ended = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.SpecifyKind(ended, DateTimeKind.Utc));
            run.Stages.Add(mapped);
        }

        return run;
    }
}
