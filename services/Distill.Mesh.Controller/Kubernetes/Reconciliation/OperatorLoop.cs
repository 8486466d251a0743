using System.Diagnostics;
using Distill.Mesh.Controller.Kubernetes.Entities;
using Distill.Mesh.Controller.Kubernetes.Resources;
using Distill.Mesh.Controller.Kubernetes.Scaling;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Options;

namespace Distill.Mesh.Controller.Kubernetes.Reconciliation;

/// <summary>
/// The operator's control loop (run by the elected leader only): watches DistillationRuns and
/// the Jobs and pods it made, queues each affected run once, reconciles a bounded number at a time,
/// backs failed reconciles off with jitter, resyncs every run periodically, and scales teachers.
/// </summary>
public sealed class OperatorLoop(IKubernetes client, RunReconciler reconciler, TeacherScaler scaler, IOptions<KubernetesOptions> options, OperatorMetrics metrics, ILogger<OperatorLoop> logger)
{
    public async Task RunAsync(string ns, CancellationToken cancellationToken)
    {
        using var queue = new WorkQueue<string>();
        var known = new System.Collections.Concurrent.ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        var managed = $"{Labels.ManagedBy}={Labels.Controller}";

        void Enqueue(string? run)
        {
            if (!string.IsNullOrEmpty(run))
                queue.Add(run);
        }

        var tasks = new List<Task>
        {
            ListWatch.RunAsync<DistillationRun>("distillationruns",
                async ct =>
                {
                    var list = await client.CustomObjects.ListNamespacedCustomObjectAsync<DistillationRunList>(DistillationRun.Group, DistillationRun.Version, ns, DistillationRun.Plural, cancellationToken: ct);
                    return (list.Items.ToList(), list.Metadata.ResourceVersion);
                },
                (rv, onError, ct) => RunWatch.Of(client, ns, rv, onError, ct),
                (type, run) =>
                {
                    if (type == WatchEventType.Deleted)
                    {
                        known.TryRemove(run.Metadata.Name, out _);
                        metrics.Forget(run.Metadata.Name);
                    }
                    else
                    {
                        known[run.Metadata.Name] = 0;
                        Enqueue(run.Metadata.Name);
                    }
                }, logger, cancellationToken),
            ListWatch.RunAsync<V1Job>("jobs",
                async ct =>
                {
                    var list = await client.BatchV1.ListNamespacedJobAsync(ns, labelSelector: managed, cancellationToken: ct);
                    return (list.Items.ToList(), list.Metadata.ResourceVersion);
                },
                (rv, onError, ct) => client.BatchV1.WatchListNamespacedJobAsync(ns, labelSelector: managed, resourceVersion: rv, timeoutSeconds: 300, onError: onError, cancellationToken: ct),
                (_, job) => Enqueue(RunOf(job.Metadata)), logger, cancellationToken),
            ListWatch.RunAsync<V1Pod>("pods",
                async ct =>
                {
                    var list = await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: managed, cancellationToken: ct);
                    return (list.Items.ToList(), list.Metadata.ResourceVersion);
                },
                (rv, onError, ct) => client.CoreV1.WatchListNamespacedPodAsync(ns, labelSelector: managed, resourceVersion: rv, timeoutSeconds: 300, onError: onError, cancellationToken: ct),
                (_, pod) => Enqueue(RunOf(pod.Metadata)), logger, cancellationToken),
            ListWatch.RunAsync<V1Deployment>("teacher deployments",
                async ct =>
                {
                    var list = await client.AppsV1.ListNamespacedDeploymentAsync(ns, labelSelector: $"{Labels.Component}=teacher", cancellationToken: ct);
                    return (list.Items.ToList(), list.Metadata.ResourceVersion);
                },
                (rv, onError, ct) => client.AppsV1.WatchListNamespacedDeploymentAsync(ns, labelSelector: $"{Labels.Component}=teacher", resourceVersion: rv, timeoutSeconds: 300, onError: onError, cancellationToken: ct),
                (_, deployment) =>
                {
                    // A teacher that became ready lets its runs' train stages start.
                    foreach (var owner in deployment.Metadata.OwnerReferences ?? [])
                        Enqueue(owner.Kind == DistillationRun.KindName ? owner.Name : null);
                }, logger, cancellationToken),
            ResyncAsync(known, queue, cancellationToken),
            scaler.RunAsync(ns, cancellationToken),
        };
        tasks.AddRange(Enumerable.Range(0, Math.Max(1, options.Value.Concurrency)).Select(_ => WorkAsync(ns, queue, cancellationToken)));
        await Task.WhenAll(tasks);
    }

    private static string? RunOf(V1ObjectMeta metadata) => metadata.Labels is { } labels && labels.TryGetValue(Labels.Run, out var run) ? run : null;

    private async Task WorkAsync(string ns, WorkQueue<string> queue, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            string key;
            try
            {
                key = await queue.TakeAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var watch = Stopwatch.StartNew();
            var failed = false;
            TimeSpan? again = null;
            try
            {
                again = await reconciler.ReconcileAsync(ns, key, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A conflict means another write got there first: read again (after the backoff), never blindly overwrite.
                failed = true;
                logger.Log(KubeCalls.IsConflict(e) ? LogLevel.Debug : LogLevel.Warning, "Reconciling run {Run} failed ({Error}); retrying with backoff", key, e.Message);
            }
            finally
            {
                metrics.Reconciled(watch.Elapsed.TotalSeconds, failed);
            }

            queue.Done(key, failed);
            if (!failed && again is { } delay)
                queue.AddAfter(key, delay);
        }
    }

    private async Task ResyncAsync(System.Collections.Concurrent.ConcurrentDictionary<string, byte> known, WorkQueue<string> queue, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Value.Resync);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                foreach (var run in known.Keys)
                    queue.Add(run);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
