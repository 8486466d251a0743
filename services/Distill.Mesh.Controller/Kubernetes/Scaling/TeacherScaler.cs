using System.Globalization;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Controller.Kubernetes.Reconciliation;
using Distill.Mesh.Controller.Kubernetes.Resources;
using k8s;
using k8s.Models;

namespace Distill.Mesh.Controller.Kubernetes.Scaling;

/// <summary>
/// Sets each shared teacher's replicas from demand: the most any active run that still needs it
/// asks for; zero once no run has needed it for its idle timeout. The idle clock starts only when
/// the teacher is Ready and unneeded (annotation distill.mesh.io/idle-since), so a teacher still
/// waiting for a GPU node or loading its model is never cut off by a timer meant for idleness.
/// </summary>
public sealed class TeacherScaler(IKubernetes client, TimeProvider time, OperatorMetrics metrics, ILogger<TeacherScaler> logger)
{
    public const string IdleSince = "distill.mesh.io/idle-since";
    public const string IdleTimeout = "distill.mesh.io/idle-timeout-seconds";

    /// <summary>How often demand is looked at.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(2);

    public async Task RunAsync(string ns, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await ScaleAsync(ns, cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning("Scaling teachers failed ({Error}); trying again in {Interval}", e.Message, Interval);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One pass over the teachers of <paramref name="ns"/>.</summary>
    public async Task ScaleAsync(string ns, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var runs = (await client.CustomObjects.ListNamespacedCustomObjectAsync<DistillationRunList>(DistillationRun.Group, DistillationRun.Version, ns, DistillationRun.Plural, cancellationToken: cancellationToken)).Items;
        var teachers = await client.AppsV1.ListNamespacedDeploymentAsync(ns, labelSelector: $"{Labels.Component}=teacher,{Labels.ManagedBy}={Labels.Controller}", cancellationToken: cancellationToken);
        foreach (var deployment in teachers.Items)
        {
            var name = deployment.Metadata.Name;
            var demanding = runs.Where(r => r.Spec.Teacher?.Model is not null && TeacherPool.Name(r.Spec.Teacher) == name && NeedsTeacher(r)).ToList();
            var replicas = deployment.Spec.Replicas ?? 1;
            var ready = deployment.Status?.ReadyReplicas ?? 0;
            IDictionary<string, string> annotations = deployment.Metadata.Annotations ?? new Dictionary<string, string>();
            metrics.SetTeacherReplicas(name, ready);
            if (demanding.Count > 0)
            {
                var wanted = demanding.Max(r => r.Spec.Teacher!.Replicas);
                var timeout = demanding.Max(r => r.Spec.Teacher!.IdleTimeoutSeconds);
                if (replicas != wanted || annotations.ContainsKey(IdleSince) || (annotations.TryGetValue(IdleTimeout, out var current) ? current : null) != timeout.ToString(CultureInfo.InvariantCulture))
                {
                    await PatchAsync(deployment, wanted, idleSince: null, timeout, cancellationToken);
                    if (replicas != wanted)
                        logger.LogInformation("Teacher {Teacher}: {Replicas} replica(s) for {Runs} run(s)", name, wanted, demanding.Count);
                }

                continue;
            }

            if (replicas == 0)
                continue;
            if (ready == 0 && !annotations.ContainsKey(IdleSince))
            {
                // Never ready and no longer needed: nothing to keep warm.
                await PatchAsync(deployment, 0, idleSince: null, null, cancellationToken);
                continue;
            }

            if (!annotations.TryGetValue(IdleSince, out var since) || !DateTime.TryParse(since, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var idleSince))
            {
                await PatchAsync(deployment, replicas, now, null, cancellationToken);
                continue;
            }

            // The longest timeout any run of this teacher asked for (a run may end before a pass saw it running).
            var users = runs.Where(r => r.Spec.Teacher?.Model is not null && TeacherPool.Name(r.Spec.Teacher) == name).ToList();
            var idleTimeout = users.Count > 0 ? users.Max(r => r.Spec.Teacher!.IdleTimeoutSeconds)
                : annotations.TryGetValue(IdleTimeout, out var text) && long.TryParse(text, CultureInfo.InvariantCulture, out var seconds) ? seconds : 900;
            if ((now - idleSince).TotalSeconds >= idleTimeout)
            {
                await PatchAsync(deployment, 0, idleSince: null, null, cancellationToken);
                logger.LogInformation("Teacher {Teacher} idle for {Seconds} s: scaled to zero", name, idleTimeout);
            }
        }
    }

    /// <summary>Whether an active run still has a stage that uses the teacher service.</summary>
    private static bool NeedsTeacher(DistillationRun run) =>
        !RunStatusEditor.IsTerminal(run.Status?.Phase ?? RunPhases.Pending) && !run.Spec.Suspend
        && (run.Status?.Stages is not { Count: > 0 } stages || stages.Any(s => s.Name is "train" or "evaluate" && s.State is StageStates.Pending or StageStates.Running));

    private async Task PatchAsync(V1Deployment deployment, int replicas, DateTime? idleSince, long? timeout, CancellationToken cancellationToken)
    {
        var annotations = new Dictionary<string, string?> { [IdleSince] = idleSince?.ToString("O", CultureInfo.InvariantCulture) };
        if (timeout is { } t)
            annotations[IdleTimeout] = t.ToString(CultureInfo.InvariantCulture);
        var body = KubernetesJson.Serialize(new { metadata = new { annotations }, spec = new { replicas } });
        await client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(body, V1Patch.PatchType.MergePatch), deployment.Metadata.Name, deployment.Metadata.NamespaceProperty, cancellationToken: cancellationToken);
    }
}
