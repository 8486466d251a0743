using System.Text.Json;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Controller.Kubernetes.Resources;
using Distill.Mesh.Specs.Configuration;
using Distill.Mesh.Specs.Runs;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>
/// Takes a DistillationRun one step toward what its spec asks, level-based and idempotent: read
/// the run and its children, make at most one change (create the spec ConfigMap, the teacher, the
/// next stage's Job; suspend; fail), write the status through /status, and say when to look
/// again. Children have deterministic names, so a retried or restarted reconcile finds what an
/// earlier one created instead of creating it twice.
/// </summary>
public sealed class RunReconciler(IKubernetes client, IOptions<KubernetesOptions> options, TimeProvider time, OperatorMetrics metrics, ILogger<RunReconciler> logger)
{
    private readonly RunEvents _events = new(client, time, logger);

    private KubernetesOptions Options => options.Value;

    /// <summary>Reconciles the run named <paramref name="name"/>; returns when to look again (null: only on the next event).</summary>
    public async Task<TimeSpan?> ReconcileAsync(string ns, string name, CancellationToken cancellationToken)
    {
        using var activity = ServiceDefaults.MeshTelemetry.Source.StartActivity("operator.reconcile");
        activity?.SetTag("distill.run_id", name);
        var run = await KubeCalls.OrNullAsync(() => client.CustomObjects.GetNamespacedCustomObjectAsync<DistillationRun>(DistillationRun.Group, DistillationRun.Version, ns, DistillationRun.Plural, name, cancellationToken));
        if (run is null || run.Metadata.DeletionTimestamp is not null)
            return null; // deleted: its children go with it (owner references)
        // Each reconcile is its own trace, linked to the run's (the Submit call's) when it has one.
        if (run.Metadata.Annotations?.TryGetValue(Labels.TraceParent, out var traceParent) == true
            && System.Diagnostics.ActivityContext.TryParse(traceParent, null, out var submitted))
            activity?.AddLink(new System.Diagnostics.ActivityLink(submitted));
        var status = Clone(run.Status);
        var before = JsonSerializer.Serialize(status);
        TimeSpan? again;
        try
        {
            again = await StepAsync(run, status, cancellationToken);
        }
        finally
        {
            status.ObservedGeneration = run.Metadata.Generation;
            if (JsonSerializer.Serialize(status) != before)
                await WriteStatusAsync(run, status, cancellationToken);
        }

        return again;
    }

    private async Task<TimeSpan?> StepAsync(DistillationRun run, DistillationRunStatus status, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var generation = run.Metadata.Generation;
        if (RunStatusEditor.IsTerminal(status.Phase))
            return null;

        // The spec, checked as Submit checks it (the folders it names are the pods', not ours).
        ParsedRunSpec parsed;
        try
        {
            parsed = RunSpecLoader.Parse(run.Spec.Run.ToJsonString(), [], folder: null, "spec.run");
            ConfigBinder.Fail("spec.run", RunSpecValidator.Problems(parsed, new RunValidation(CheckPaths: false, ThroughMesh: true, PrecomputeThroughServices: false)));
        }
        catch (ConfigException e)
        {
            RunStatusEditor.End(status, RunPhases.Failed, "InvalidSpec", e.Message, generation, now, StageStates.Failed);
            await _events.RecordAsync(run, "Warning", "InvalidSpec", e.Message, cancellationToken);
            return null;
        }

        status.SpecSha256 = parsed.Sha256;
        foreach (var stage in parsed.Spec.Stages)
            RunStatusEditor.Stage(status, stage);
        var steps = StageJobs.Steps(parsed.Spec);
        var jobs = (await client.BatchV1.ListNamespacedJobAsync(run.Metadata.NamespaceProperty, labelSelector: $"{Labels.Run}={run.Metadata.Name}", cancellationToken: cancellationToken))
            .Items.ToDictionary(j => j.Metadata.Name, StringComparer.Ordinal);

        var cancelled = run.Metadata.Annotations?.ContainsKey(Labels.Cancelled) == true;
        if (cancelled || run.Spec.Suspend)
            return await HoldAsync(run, status, jobs.Values, cancelled, now, cancellationToken);
        if (RunStatusEditor.IsTrue(status, RunConditions.Suspended))
        {
            RunStatusEditor.SetCondition(status, RunConditions.Suspended, false, "Resumed", "the run was resumed", generation, now);
            foreach (var job in jobs.Values.Where(j => j.Spec.Suspend == true && j.Metadata.Labels?.ContainsKey(Labels.KueueQueue) != true))
                await SetSuspendAsync(job, false, cancellationToken);
        }

        if (run.Spec.ActiveDeadlineSeconds is { } deadline && status.StartTime is { } started && (now - started).TotalSeconds > deadline)
        {
            foreach (var job in jobs.Values.Where(j => j.Status?.CompletionTime is null))
                await SetSuspendAsync(job, true, cancellationToken);
            var message = $"the run was active for longer than its activeDeadlineSeconds ({deadline} s)";
            RunStatusEditor.End(status, RunPhases.Failed, "DeadlineExceeded", message, generation, now, StageStates.Failed);
            await _events.RecordAsync(run, "Warning", "DeadlineExceeded", message, cancellationToken);
            return null;
        }

        // The spec the pods read.
        var teacher = run.Spec.Teacher;
        var endpoint = teacher?.Endpoint ?? (teacher?.Model is not null ? TeacherPool.Endpoint(teacher, run.Metadata.NamespaceProperty, Options.TlsSecret is not null) : null);
        if (await KubeCalls.OrNullAsync(() => client.CoreV1.ReadNamespacedConfigMapAsync(SpecConfigMap.Name(run), run.Metadata.NamespaceProperty, cancellationToken: cancellationToken)) is null)
        {
            await KubeCalls.CreateOrGetAsync(
                () => client.CoreV1.CreateNamespacedConfigMapAsync(SpecConfigMap.Build(run, PodSpec(parsed.Spec, endpoint)), run.Metadata.NamespaceProperty, cancellationToken: cancellationToken),
                () => client.CoreV1.ReadNamespacedConfigMapAsync(SpecConfigMap.Name(run), run.Metadata.NamespaceProperty, cancellationToken: cancellationToken));
            status.Phase = RunPhases.Running;
            status.StartTime ??= now;
            return TimeSpan.Zero;
        }

        var teacherReady = true;
        if (teacher?.Model is not null && NeedsTeacher(parsed.Spec, status))
        {
            status.Teacher = TeacherPool.Name(teacher);
            var (ready, created) = await EnsureTeacherAsync(run, teacher, cancellationToken);
            teacherReady = ready;
            RunStatusEditor.SetCondition(status, RunConditions.TeacherReady, ready, ready ? "Ready" : "NotReady",
                ready ? $"teacher {status.Teacher} is ready" : $"teacher {status.Teacher} is starting (model load and warm-up)", run.Metadata.Generation, now);
            if (created)
                return TimeSpan.Zero;
        }
        else if (teacher?.Endpoint is not null)
        {
            status.Teacher = teacher.Endpoint;
        }

        return await AdvanceAsync(run, status, steps, jobs, teacher, teacherReady, now, cancellationToken);
    }

    /// <summary>Looks at the stages' Jobs in order and moves the first unfinished one forward.</summary>
    private async Task<TimeSpan?> AdvanceAsync(DistillationRun run, DistillationRunStatus status, IReadOnlyList<StageStep> steps, Dictionary<string, V1Job> jobs,
        TeacherSpec? teacher, bool teacherReady, DateTime now, CancellationToken cancellationToken)
    {
        var generation = run.Metadata.Generation;
        foreach (var step in steps)
        {
            var entry = RunStatusEditor.Stage(status, step.Stage);
            var name = StageJobs.JobName(run, step);
            if (!jobs.TryGetValue(name, out var job))
            {
                if (step.Stage == Stage.Train && !teacherReady)
                {
                    RunStatusEditor.SetCondition(status, RunConditions.Progressing, false, "WaitingForTeacher", $"the train stage waits for teacher {status.Teacher} to be ready", generation, now);
                    return TimeSpan.FromSeconds(10);
                }

                await KubeCalls.CreateOrGetAsync(
                    () => client.BatchV1.CreateNamespacedJobAsync(StageJobs.Build(run, step, teacher, Options), run.Metadata.NamespaceProperty, cancellationToken: cancellationToken),
                    () => client.BatchV1.ReadNamespacedJobAsync(name, run.Metadata.NamespaceProperty, cancellationToken: cancellationToken));
                if (entry.State != StageStates.Running)
                {
                    entry.State = StageStates.Running;
                    entry.StartTime ??= now;
                    await _events.RecordAsync(run, "Normal", "StageStarted", $"stage {step.Stage} started ({name})", cancellationToken);
                }

                entry.Child = name;
                status.Phase = RunPhases.Running;
                status.CurrentStage = step.Stage;
                RunStatusEditor.SetCondition(status, RunConditions.Progressing, true, "StageStarted", $"stage {step.Stage}: {name} created", generation, now);
                return TimeSpan.Zero;
            }

            if (job.Status?.Conditions?.FirstOrDefault(c => c.Type == "Failed" && c.Status == "True") is { } failed)
            {
                var message = $"stage {step.Stage}: Job {name} failed: {failed.Reason}: {failed.Message}";
                entry.State = StageStates.Failed;
                entry.Message = message;
                RunStatusEditor.End(status, RunPhases.Failed, "StageFailed", message, generation, now, StageStates.Failed);
                await _events.RecordAsync(run, "Warning", "StageFailed", message, cancellationToken);
                return null;
            }

            var complete = job.Status?.Conditions?.Any(c => c.Type == "Complete" && c.Status == "True") == true;
            if (complete)
            {
                if (steps.Last(s => s.Stage == step.Stage) == step && entry.State != StageStates.Succeeded)
                {
                    entry.State = StageStates.Succeeded;
                    entry.CompletionTime = job.Status?.CompletionTime ?? now;
                    entry.Message = $"{name} completed";
                    await _events.RecordAsync(run, "Normal", "StageSucceeded", $"stage {step.Stage} succeeded", cancellationToken);
                }

                continue;
            }

            // Running (or waiting for a node or a quota).
            status.Phase = RunPhases.Running;
            status.CurrentStage = step.Stage;
            entry.State = StageStates.Running;
            entry.Child = name;
            return await WatchSchedulingAsync(run, status, step, job, now, cancellationToken);
        }

        RunStatusEditor.End(status, RunPhases.Succeeded, "Succeeded", $"every stage succeeded ({string.Join(" → ", status.Stages.Select(s => s.Name))})", generation, now, StageStates.Succeeded);
        await _events.RecordAsync(run, "Normal", "Succeeded", "every stage succeeded", cancellationToken);
        return null;
    }

    /// <summary>A stage whose pods wait for a node or a quota is held (condition False with the scheduler's message) and fails only after the grace.</summary>
    private async Task<TimeSpan?> WatchSchedulingAsync(DistillationRun run, DistillationRunStatus status, StageStep step, V1Job job, DateTime now, CancellationToken cancellationToken)
    {
        var generation = run.Metadata.Generation;
        var waiting = await Scheduling.WaitingAsync(client, job, cancellationToken);
        metrics.SetPending(run.Metadata.Name, waiting is not null && (run.Spec.Resources.Of(step.Stage)?.Gpus ?? 0) > 0);
        var entry = RunStatusEditor.Stage(status, step.Stage);
        if (waiting is null)
        {
            entry.WaitingSince = null;
            RunStatusEditor.SetCondition(status, RunConditions.Progressing, true, "StageRunning", $"stage {step.Stage} is running ({job.Metadata.Name})", generation, now);
            return Options.Resync;
        }

        var since = entry.WaitingSince ??= now;
        RunStatusEditor.SetCondition(status, RunConditions.Progressing, false, waiting.Reason, waiting.Message, generation, now);
        var grace = run.Spec.UnschedulableGraceSeconds ?? Options.UnschedulableGraceSeconds;
        if ((now - since).TotalSeconds < grace)
            return TimeSpan.FromSeconds(Math.Min(5, Math.Max(1, grace - (now - since).TotalSeconds))); // Kueue's Workloads are not watched: look again soon
        await SetSuspendAsync(job, true, cancellationToken);
        var message = $"stage {step.Stage} could not be scheduled for {grace} s: {waiting.Message}";
        RunStatusEditor.End(status, RunPhases.Failed, waiting.Reason, message, generation, now, StageStates.Failed);
        await _events.RecordAsync(run, "Warning", waiting.Reason, message, cancellationToken);
        return null;
    }

    /// <summary>Suspended or cancelled: the stage Jobs are suspended (their pods go away; checkpoints stay on the claim).</summary>
    private async Task<TimeSpan?> HoldAsync(DistillationRun run, DistillationRunStatus status, IEnumerable<V1Job> jobs, bool cancelled, DateTime now, CancellationToken cancellationToken)
    {
        foreach (var job in jobs.Where(j => j.Spec.Suspend != true && j.Status?.CompletionTime is null))
            await SetSuspendAsync(job, true, cancellationToken);
        if (cancelled)
        {
            RunStatusEditor.End(status, RunPhases.Cancelled, "Cancelled", "cancelled by the user; its pods were removed, its checkpoints kept", run.Metadata.Generation, now, StageStates.Cancelled);
            await _events.RecordAsync(run, "Normal", "Cancelled", "the run was cancelled", cancellationToken);
            return null;
        }

        if (status.Phase != RunPhases.Suspended)
            await _events.RecordAsync(run, "Normal", "Suspended", "the run was suspended", cancellationToken);
        status.Phase = RunPhases.Suspended;
        RunStatusEditor.SetCondition(status, RunConditions.Suspended, true, "Suspended", "spec.suspend is true: the stage Jobs are suspended", run.Metadata.Generation, now);
        return null;
    }

    private async Task SetSuspendAsync(V1Job job, bool suspend, CancellationToken cancellationToken) =>
        await client.BatchV1.PatchNamespacedJobAsync(new V1Patch($"{{\"spec\":{{\"suspend\":{(suspend ? "true" : "false")}}}}}", V1Patch.PatchType.MergePatch),
            job.Metadata.Name, job.Metadata.NamespaceProperty, cancellationToken: cancellationToken);

    /// <summary>Whether a stage still to come needs the teacher service (train with a teacher; evaluate measures KL against it).</summary>
    private static bool NeedsTeacher(RunSpec spec, DistillationRunStatus status) =>
        spec.Train.Teachers.Count > 0 && spec.Train.Recipe != "sft" &&
        status.Stages.Any(s => s.Name is Stage.Train or Stage.Evaluate && s.State is StageStates.Pending or StageStates.Running);

    /// <summary>The shared teacher exists (this run among its owners); returns whether it is ready and whether this pass created something.</summary>
    private async Task<(bool Ready, bool Created)> EnsureTeacherAsync(DistillationRun run, TeacherSpec teacher, CancellationToken cancellationToken)
    {
        var ns = run.Metadata.NamespaceProperty;
        var name = TeacherPool.Name(teacher);
        if (await KubeCalls.OrNullAsync(() => client.CoreV1.ReadNamespacedServiceAsync(name, ns, cancellationToken: cancellationToken)) is null)
        {
            await KubeCalls.CreateOrGetAsync(() => client.CoreV1.CreateNamespacedServiceAsync(TeacherPool.Service(run, teacher), ns, cancellationToken: cancellationToken),
                () => client.CoreV1.ReadNamespacedServiceAsync(name, ns, cancellationToken: cancellationToken));
            return (false, true);
        }

        var deployment = await KubeCalls.OrNullAsync(() => client.AppsV1.ReadNamespacedDeploymentAsync(name, ns, cancellationToken: cancellationToken));
        if (deployment is null)
        {
            await KubeCalls.CreateOrGetAsync(() => client.AppsV1.CreateNamespacedDeploymentAsync(TeacherPool.Deployment(run, teacher, teacher.Replicas, Options), ns, cancellationToken: cancellationToken),
                () => client.AppsV1.ReadNamespacedDeploymentAsync(name, ns, cancellationToken: cancellationToken));
            return (false, true);
        }

        if (deployment.Metadata.OwnerReferences?.Any(o => o.Uid == run.Metadata.Uid) != true)
        {
            // Another run created it: this one becomes an owner too (merge patch replaces the list: send all).
            var owners = (deployment.Metadata.OwnerReferences ?? []).Append(Labels.Owner(run) with { Controller = false }).ToList();
            await client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(JsonSerializer.Serialize(new { metadata = new { ownerReferences = owners, resourceVersion = deployment.Metadata.ResourceVersion } }, KubeJson), V1Patch.PatchType.MergePatch),
                name, ns, cancellationToken: cancellationToken);
            return (false, true);
        }

        return ((deployment.Status?.ReadyReplicas ?? 0) > 0, false);
    }

    private static readonly JsonSerializerOptions KubeJson = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    /// <summary>The canonical spec for the pods: the teacher reached at its Service, no output folder (each service chooses it on the runs claim).</summary>
    public static string PodSpec(RunSpec spec, string? teacherEndpoint)
    {
        if (teacherEndpoint is not null && spec.Train.Teachers.Count > 0 && string.IsNullOrWhiteSpace(spec.Train.Teachers[0].Endpoint))
            spec.Train.Teachers[0].Endpoint = teacherEndpoint;
        var canonical = RunSpecLoader.Canonicalize(spec).Canonical;
        canonical.Remove("output_dir");
        return canonical.ToJsonString();
    }

    private async Task WriteStatusAsync(DistillationRun run, DistillationRunStatus status, CancellationToken cancellationToken)
    {
        // Progress and the artifact are the progress relay's to write (from the trainer's reports): never rolled back from an older read.
        var node = System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(status))!.AsObject();
        node.Remove("progress");
        node.Remove("artifact");
        var body = new System.Text.Json.Nodes.JsonObject { ["status"] = node }.ToJsonString();
        await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(new V1Patch(body, V1Patch.PatchType.MergePatch),
            DistillationRun.Group, DistillationRun.Version, run.Metadata.NamespaceProperty, DistillationRun.Plural, run.Metadata.Name, cancellationToken: cancellationToken);
        metrics.Observe(run.Metadata.Name, status.Phase);
    }

    private static DistillationRunStatus Clone(DistillationRunStatus? status) =>
        status is null ? new DistillationRunStatus() : KubernetesJson.Deserialize<DistillationRunStatus>(KubernetesJson.Serialize(status));
}
